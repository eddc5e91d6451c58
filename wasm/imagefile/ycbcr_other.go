//go:build !amd64

package imagefile

// hasAVX2 is a var so that tests switch paths alike on every arch.
var hasAVX2 = false

func upsampleH2V2(near, far []byte, n int, out []byte) {
	panic("imagefile: no vector upsampling on this architecture")
}

func jfifPacked(ys, cbs, crs []byte, rb []int64, g []byte) int { return 0 }

func rgbaPacked(src []byte, rb []int64, g []byte) (int, bool) { return 0, true }

func jfifRGB(ys, cbs, crs, dst []byte) int { return 0 }

func upsampleH2V1(row []byte, n int, out []byte) {
	panic("imagefile: no vector upsampling on this architecture")
}
