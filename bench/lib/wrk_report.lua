-- wrk script: adds nothing to the requests (wrk's static request path is
-- kept); at the end prints one machine-readable line that bench.py parses.
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
      '"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f,' ..
      '"p50_us":%.0f,"p99_us":%.0f}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(99)))
end
