"""Training: the model builder (memory plan, speed levers), resume, signals, metrics and run outputs."""
