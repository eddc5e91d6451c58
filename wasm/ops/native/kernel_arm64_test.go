package native

// kernels lists the assembly micro-kernels of this architecture.
func kernels() []gemmKernel { return []gemmKernel{neonKernel} }
