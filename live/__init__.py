"""hark's runtime: sources, frontend, VAD, ONNX runners, smoothing. Never imports TensorFlow."""
