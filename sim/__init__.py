"""macforge system level: the CLI, reporting, and (later) the accelerator model and studies."""
