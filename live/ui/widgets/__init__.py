"""The UI's widgets: the event roll, the panels (now, events, input, latency) and the status bar."""
