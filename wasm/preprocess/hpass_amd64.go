package preprocess

import "golang.org/x/sys/cpu"

// hasAVX2 selects the AVX2 horizontal pass (hpass_amd64.s).
var hasAVX2 = cpu.X86.HasAVX2

// horizontalAVX2 is horizontal over a flat plan (see hplan): n windows of kp
// taps each, rb/g readable up to mins[i]+kp.
//
//go:noescape
func horizontalAVX2(rb *int64, gr *byte, mins *int32, krb *int32, kg *int32, n, kp int, out *byte)

func horizontalVec(rb []int64, g []byte, p *hplan, out []byte) {
	n := len(p.mins)
	_ = out[3*n-1]
	_ = rb[p.need-1]
	_ = g[p.need-1]
	horizontalAVX2(&rb[0], &g[0], &p.mins[0], &p.krb[0], &p.kg[0], n, p.kp, &out[0])
}

//go:noescape
func verticalAVX2(rows *byte, stride int, k *int32, nk, n int, out *byte)

// verticalVec computes the first len(out) &^ 31 bytes of one output row
// from rows (the window's len(k) input rows, stride apart) and returns
// how many.
func verticalVec(rows []byte, stride int, k []int32, out []byte) int {
	n := len(out) &^ 31
	if n == 0 || len(k) == 0 {
		return 0
	}
	_ = rows[(len(k)-1)*stride+n-1]
	verticalAVX2(&rows[0], stride, &k[0], len(k), n, &out[0])
	return n
}
