// hark capture worklet: runs on the audio thread; copies the microphone's samples into blocks and
// posts each full block (Float32Array, transferred) to the page. Nothing else happens here.
class HarkCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const ms = (options.processorOptions && options.processorOptions.blockMs) || 20;
    this.size = Math.max(128, Math.round(sampleRate * ms / 1000));
    this.block = new Float32Array(this.size);
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length) {
      const ch = input[0];  // mono: the first channel
      let i = 0;
      while (i < ch.length) {
        const n = Math.min(ch.length - i, this.size - this.fill);
        this.block.set(ch.subarray(i, i + n), this.fill);
        this.fill += n;
        i += n;
        if (this.fill === this.size) {
          this.port.postMessage(this.block, [this.block.buffer]);
          this.block = new Float32Array(this.size);
          this.fill = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("hark-capture", HarkCapture);
