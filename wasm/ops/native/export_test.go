package native

// KernelNames lists the SGEMM micro-kernels this CPU can run, fastest last
// (for benchmarks in package native_test).
func KernelNames() []string {
	names := []string{genericKernel.name}
	for _, k := range kernels() {
		names = append(names, k.name)
	}
	return names
}

// UseKernel switches the SGEMM micro-kernel by name and returns a function
// that restores the previous one. Not safe while products are running.
func UseKernel(name string) (restore func()) {
	saved := kernel
	for _, k := range append([]gemmKernel{genericKernel}, kernels()...) {
		if k.name == name {
			kernel = k
		}
	}
	return func() { kernel = saved }
}
