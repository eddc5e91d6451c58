package native

import "golang.org/x/sys/cpu"

// hasAVX2FMA reports whether the AVX2+FMA micro-kernel can run here.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

func init() {
	if hasAVX2FMA {
		kernel = kernelAVX2
	}
}

// kern6x16AVX2 is the assembly micro-kernel (kernel_amd64.s): a 6x16 tile in
// 12 YMM accumulators, one VBROADCASTSS of A and two loads of B per k step.
//
//go:noescape
func kern6x16AVX2(k int, a, b *float32, ldb int, c *float32, ldc int)

// kernelAVX2 checks the slice bounds the assembly relies on, so a driver
// bug panics instead of touching memory it does not own.
func kernelAVX2(k int, a, b []float32, ldb int, c []float32, ldc int) {
	if k <= 0 {
		return
	}
	_ = a[k*mr-1]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	kern6x16AVX2(k, &a[0], &b[0], ldb, &c[0], ldc)
}
