package native

func kernels() map[string]microKernel {
	if !hasAVX2FMA {
		return nil
	}
	return map[string]microKernel{"avx2": kernelAVX2}
}
