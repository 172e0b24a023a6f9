"""Training, inference and merge jobs that run inside an ftimg image.

Run one with ``python -m ftimg_jobs JOB [flags | config.yaml [flags]]``;
``catalogue.json`` lists the jobs.
"""
