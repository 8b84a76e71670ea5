"""Reports: the HTML page writer, ``zspace analyze`` (one run's report) and ``zspace compare`` (several runs)."""
