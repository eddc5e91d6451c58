package native

// kernels lists the assembly micro-kernels this CPU can run.
func kernels() []gemmKernel {
	var ks []gemmKernel
	if hasAVX2FMA {
		ks = append(ks, avx2Kernel)
	}
	if hasAVX512 {
		ks = append(ks, avx512Kernel)
	}
	return ks
}
