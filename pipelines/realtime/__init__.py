"""The real-time engine behind the API's /optimize and /feedback: the batch's rules, one request
at a time, on an in-memory snapshot of the statistics (see DESIGN.md, Real time)."""
