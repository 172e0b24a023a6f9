"""Beyond one host: compose files and Slurm batch scripts that fill the jobs' rendezvous contract."""
