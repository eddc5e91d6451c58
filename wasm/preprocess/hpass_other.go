//go:build !amd64

package preprocess

var hasAVX2 = false // a var so tests can switch paths alike on every arch

func horizontalVec(rb []int64, g []byte, p *hplan, out []byte) {
	panic("preprocess: no vector horizontal pass on this architecture")
}

func verticalVec(rows []byte, stride int, k []int32, out []byte) int { return 0 }
