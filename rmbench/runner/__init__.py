"""The run, in pieces: model labels (``labels``), the one chunked score-and-evaluate loop (``loop``) and the
results document (``document``); ``rmbench.runner.run.run_suite`` puts them together."""
