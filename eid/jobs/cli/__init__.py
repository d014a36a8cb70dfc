"""`manage.py descript`: Descript's jobs from the command line (the command is eid/jobs/management/commands).

    exits.py    exit codes, and the failure that carries one with its plain words
    output.py   --json (one object per line on stdout) or words for people
    media.py    media arguments -> the import's add_media (links converted, bucket keys presigned)
    watch.py    following one job at Descript's cadence, with a live display
    jobs.py     import, agent, publish, jobs list|get|cancel|watch
    batch.py    batch: auto-edits of many recordings through the state machine
"""
