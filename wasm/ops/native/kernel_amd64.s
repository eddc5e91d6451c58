#include "textflag.h"

// func packRows16AVX(k int, src *float32, ld int, dst *float32)
TEXT ·packRows16AVX(SB), NOSPLIT, $0-32
	MOVQ k+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ dst+24(FP), DI
	LEAQ (R8)(R8*2), R10 // prefetch distance: 6 rows ahead
	SHLQ $1, R10

pack16:
	PREFETCHT0 (SI)(R10*1)
	VMOVUPS    (SI), Y0
	VMOVUPS    32(SI), Y1
	VMOVUPS    Y0, (DI)
	VMOVUPS    Y1, 32(DI)
	ADDQ       R8, SI
	ADDQ       $64, DI
	DECQ       CX
	JNZ        pack16
	VZEROUPPER
	RET

// func packRows32AVX512(k int, src *float32, ld int, dst *float32)
TEXT ·packRows32AVX512(SB), NOSPLIT, $0-32
	MOVQ k+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ ld+16(FP), R8
	SHLQ $2, R8
	MOVQ dst+24(FP), DI
	LEAQ (R8)(R8*2), R10 // prefetch distance: 6 rows ahead
	SHLQ $1, R10

pack32:
	PREFETCHT0 (SI)(R10*1)
	PREFETCHT0 64(SI)(R10*1)
	VMOVUPS    (SI), Z0
	VMOVUPS    64(SI), Z1
	VMOVUPS    Z0, (DI)
	VMOVUPS    Z1, 64(DI)
	ADDQ       R8, SI
	ADDQ       $128, DI
	DECQ       CX
	JNZ        pack32
	VZEROUPPER
	RET

// Constants for the vector exp (Cephes expf, as in expf in elementwise.go).
DATA expConst<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expConst<>+4(SB)/4, $0x3f318000  // ln2 hi = 0.693359375
DATA expConst<>+8(SB)/4, $0xb95e8083  // ln2 lo = -2.12194440e-4
DATA expConst<>+12(SB)/4, $0x39506967 // 1.9875691500e-4
DATA expConst<>+16(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA expConst<>+20(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA expConst<>+24(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA expConst<>+28(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA expConst<>+32(SB)/4, $0x3f000000 // 5.0000001201e-1
DATA expConst<>+36(SB)/4, $0x3f800000 // 1
DATA expConst<>+40(SB)/4, $0xc2c80000 // -100: |t| beyond this saturates anyway
DATA expConst<>+44(SB)/4, $0x42c80000 // 100
GLOBL expConst<>(SB), RODATA|NOPTR, $48

// func sigmoidAVX512(n int, src, dst *float32)
//
// dst[i] = 1 / (1 + exp(-src[i])) for i < n, n a multiple of 16. exp uses
// round-to-nearest range reduction, the Cephes polynomial and VSCALEFPS,
// which saturates to +Inf / 0 exactly like the scalar code.
TEXT ·sigmoidAVX512(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ dst+16(FP), DI
	VBROADCASTSS expConst<>+0(SB), Z20
	VBROADCASTSS expConst<>+4(SB), Z21
	VBROADCASTSS expConst<>+8(SB), Z22
	VBROADCASTSS expConst<>+12(SB), Z23
	VBROADCASTSS expConst<>+16(SB), Z24
	VBROADCASTSS expConst<>+20(SB), Z25
	VBROADCASTSS expConst<>+24(SB), Z26
	VBROADCASTSS expConst<>+28(SB), Z27
	VBROADCASTSS expConst<>+32(SB), Z28
	VBROADCASTSS expConst<>+36(SB), Z29
	VBROADCASTSS expConst<>+40(SB), Z30
	VBROADCASTSS expConst<>+44(SB), Z31
	SHRQ         $4, CX
	JEQ          sigdone

sigloop:
	VMOVUPS     (SI), Z0
	VPXORD      Z1, Z1, Z1
	VSUBPS      Z0, Z1, Z0      // t = -x
	VMAXPS      Z0, Z30, Z0     // clamp to [-100, 100]; NaN (second
	VMINPS      Z0, Z31, Z0     // operand) passes through
	VMULPS      Z20, Z0, Z1     // t*log2e
	VRNDSCALEPS $0, Z1, Z1      // n = round(t*log2e)
	VFNMADD231PS Z21, Z1, Z0    // r = t - n*ln2hi
	VFNMADD231PS Z22, Z1, Z0    // r -= n*ln2lo
	VMULPS      Z0, Z0, Z2      // z = r*r
	VMOVAPS     Z23, Z3
	VFMADD213PS Z24, Z0, Z3     // y = y*r + c
	VFMADD213PS Z25, Z0, Z3
	VFMADD213PS Z26, Z0, Z3
	VFMADD213PS Z27, Z0, Z3
	VFMADD213PS Z28, Z0, Z3
	VFMADD213PS Z0, Z2, Z3      // y = y*z + r
	VADDPS      Z29, Z3, Z3     // y += 1
	VSCALEFPS   Z1, Z3, Z3      // e = y * 2^n
	VADDPS      Z29, Z3, Z3     // 1 + e
	VDIVPS      Z3, Z29, Z3     // 1 / (1 + e)
	VMOVUPS     Z3, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         sigloop

sigdone:
	VZEROUPPER
	RET

// Elementwise loops (AVX, 16 floats per iteration; Go does the tail).
// func xxxVV(n int, dst, a, b *float32): dst[i] = a[i] op b[i]
// func xxxVS(n int, dst, a *float32, s float32): dst[i] = a[i] op s
// func subSV(n int, dst *float32, s float32, b *float32): dst[i] = s - b[i]

// func addVVAVX(n int, dst, a, b *float32)
TEXT ·addVVAVX(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	SHRQ $4, CX
	JEQ  addvvdone

addvvloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VADDPS  (DX), Y0, Y0
	VADDPS  32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     addvvloop

addvvdone:
	VZEROUPPER
	RET

// func addVSAVX(n int, dst, a *float32, s float32)
TEXT ·addVSAVX(SB), NOSPLIT, $0-28
	MOVQ         n+0(FP), CX
	MOVQ         dst+8(FP), DI
	MOVQ         a+16(FP), SI
	VBROADCASTSS s+24(FP), Y2
	SHRQ         $4, CX
	JEQ          addvsdone

addvsloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VADDPS  Y2, Y0, Y0
	VADDPS  Y2, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     addvsloop

addvsdone:
	VZEROUPPER
	RET

// func subVVAVX(n int, dst, a, b *float32)
TEXT ·subVVAVX(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	SHRQ $4, CX
	JEQ  subvvdone

subvvloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSUBPS  (DX), Y0, Y0
	VSUBPS  32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     subvvloop

subvvdone:
	VZEROUPPER
	RET

// func subVSAVX(n int, dst, a *float32, s float32)
TEXT ·subVSAVX(SB), NOSPLIT, $0-28
	MOVQ         n+0(FP), CX
	MOVQ         dst+8(FP), DI
	MOVQ         a+16(FP), SI
	VBROADCASTSS s+24(FP), Y2
	SHRQ         $4, CX
	JEQ          subvsdone

subvsloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VSUBPS  Y2, Y0, Y0
	VSUBPS  Y2, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     subvsloop

subvsdone:
	VZEROUPPER
	RET

// func mulVVAVX(n int, dst, a, b *float32)
TEXT ·mulVVAVX(SB), NOSPLIT, $0-32
	MOVQ n+0(FP), CX
	MOVQ dst+8(FP), DI
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	SHRQ $4, CX
	JEQ  mulvvdone

mulvvloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMULPS  (DX), Y0, Y0
	VMULPS  32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     mulvvloop

mulvvdone:
	VZEROUPPER
	RET

// func mulVSAVX(n int, dst, a *float32, s float32)
TEXT ·mulVSAVX(SB), NOSPLIT, $0-28
	MOVQ         n+0(FP), CX
	MOVQ         dst+8(FP), DI
	MOVQ         a+16(FP), SI
	VBROADCASTSS s+24(FP), Y2
	SHRQ         $4, CX
	JEQ          mulvsdone

mulvsloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMULPS  Y2, Y0, Y0
	VMULPS  Y2, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     mulvsloop

mulvsdone:
	VZEROUPPER
	RET

// func subSVAVX(n int, dst *float32, s float32, b *float32)
TEXT ·subSVAVX(SB), NOSPLIT, $0-32
	MOVQ         n+0(FP), CX
	MOVQ         dst+8(FP), DI
	VBROADCASTSS s+16(FP), Y2
	MOVQ         b+24(FP), SI
	SHRQ         $4, CX
	JEQ          subsvdone

subsvloop:
	VSUBPS  (SI), Y2, Y0
	VSUBPS  32(SI), Y2, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    CX
	JNZ     subsvloop

subsvdone:
	VZEROUPPER
	RET

// func sumAVX(n int, a *float32) float32: sum of a[:n], n a multiple of 16,
// in 16 lanes (pairwise-ish summation, more accurate than one chain).
TEXT ·sumAVX(SB), NOSPLIT, $0-20
	MOVQ   n+0(FP), CX
	MOVQ   a+8(FP), SI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ   $4, CX
	JEQ    sumdone

sumloop:
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y1, Y1
	ADDQ   $64, SI
	DECQ   CX
	JNZ    sumloop

sumdone:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func expShiftAVX512(n int, src, dst *float32, shift float32) float32
//
// dst[i] = exp(src[i] - shift) for i < n (n a multiple of 16), returning
// the sum of the results: the middle of a softmax row. Arguments are
// clamped to [-100, 100] (exp(-100) ~ 4e-44 is nothing next to the row's
// maximum term, 1).
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-36
	MOVQ         n+0(FP), CX
	MOVQ         src+8(FP), SI
	MOVQ         dst+16(FP), DI
	VBROADCASTSS shift+24(FP), Z19
	VBROADCASTSS expConst<>+0(SB), Z20
	VBROADCASTSS expConst<>+4(SB), Z21
	VBROADCASTSS expConst<>+8(SB), Z22
	VBROADCASTSS expConst<>+12(SB), Z23
	VBROADCASTSS expConst<>+16(SB), Z24
	VBROADCASTSS expConst<>+20(SB), Z25
	VBROADCASTSS expConst<>+24(SB), Z26
	VBROADCASTSS expConst<>+28(SB), Z27
	VBROADCASTSS expConst<>+32(SB), Z28
	VBROADCASTSS expConst<>+36(SB), Z29
	VBROADCASTSS expConst<>+40(SB), Z30
	VBROADCASTSS expConst<>+44(SB), Z31
	VPXORD       Z18, Z18, Z18 // running sum
	SHRQ         $4, CX
	JEQ          expdone

exploop:
	VMOVUPS      (SI), Z0
	VSUBPS       Z19, Z0, Z0 // t = x - shift
	VMAXPS       Z0, Z30, Z0 // clamp to [-100, 100], NaN passes
	VMINPS       Z0, Z31, Z0
	VMULPS       Z20, Z0, Z1
	VRNDSCALEPS  $0, Z1, Z1
	VFNMADD231PS Z21, Z1, Z0
	VFNMADD231PS Z22, Z1, Z0
	VMULPS       Z0, Z0, Z2
	VMOVAPS      Z23, Z3
	VFMADD213PS  Z24, Z0, Z3
	VFMADD213PS  Z25, Z0, Z3
	VFMADD213PS  Z26, Z0, Z3
	VFMADD213PS  Z27, Z0, Z3
	VFMADD213PS  Z28, Z0, Z3
	VFMADD213PS  Z0, Z2, Z3
	VADDPS       Z29, Z3, Z3
	VSCALEFPS    Z1, Z3, Z3
	VMOVUPS      Z3, (DI)
	VADDPS       Z3, Z18, Z18
	ADDQ         $64, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          exploop

expdone:
	VMOVAPS       Z18, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VMOVSS        X0, ret+32(FP)
	VZEROUPPER
	RET

DATA expBias<>+0(SB)/4, $127
GLOBL expBias<>(SB), RODATA|NOPTR, $4

// EXP8 computes Y3 = exp(Y0) for Y0 already clamped to [-100, 100], with
// the constants loaded by EXPCONST8. 2^n is applied in two halves
// (n1 = n>>1, n2 = n-n1, each a valid normal exponent) so that n up to
// +-145 saturates to +Inf / denormals as the scalar code does; AVX2 has no
// VSCALEFPS. Clobbers Y0-Y3.
#define EXP8 \
	VMULPS       Y15, Y0, Y1 \
	VROUNDPS     $0, Y1, Y1 \
	VFNMADD231PS Y14, Y1, Y0 \
	VFNMADD231PS Y13, Y1, Y0 \
	VMULPS       Y0, Y0, Y2 \
	VMOVAPS      Y12, Y3 \
	VFMADD213PS  Y11, Y0, Y3 \
	VFMADD213PS  Y10, Y0, Y3 \
	VFMADD213PS  Y9, Y0, Y3 \
	VFMADD213PS  Y8, Y0, Y3 \
	VFMADD213PS  Y7, Y0, Y3 \
	VFMADD213PS  Y0, Y2, Y3 \
	VADDPS       Y6, Y3, Y3 \
	VCVTPS2DQ    Y1, Y1 \
	VPSRAD       $1, Y1, Y2 \
	VPSUBD       Y2, Y1, Y1 \
	VPBROADCASTD expBias<>+0(SB), Y0 \
	VPADDD       Y0, Y2, Y2 \
	VPSLLD       $23, Y2, Y2 \
	VPADDD       Y0, Y1, Y1 \
	VPSLLD       $23, Y1, Y1 \
	VMULPS       Y2, Y3, Y3 \
	VMULPS       Y1, Y3, Y3

#define EXPCONST8 \
	VBROADCASTSS expConst<>+0(SB), Y15 \
	VBROADCASTSS expConst<>+4(SB), Y14 \
	VBROADCASTSS expConst<>+8(SB), Y13 \
	VBROADCASTSS expConst<>+12(SB), Y12 \
	VBROADCASTSS expConst<>+16(SB), Y11 \
	VBROADCASTSS expConst<>+20(SB), Y10 \
	VBROADCASTSS expConst<>+24(SB), Y9 \
	VBROADCASTSS expConst<>+28(SB), Y8 \
	VBROADCASTSS expConst<>+32(SB), Y7 \
	VBROADCASTSS expConst<>+36(SB), Y6 \
	VBROADCASTSS expConst<>+40(SB), Y5 \
	VBROADCASTSS expConst<>+44(SB), Y4

// func sigmoidAVX2(n int, src, dst *float32)
//
// dst[i] = 1 / (1 + exp(-src[i])) for i < n, n a multiple of 8 (AVX2+FMA).
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ n+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ dst+16(FP), DI
	EXPCONST8
	SHRQ $3, CX
	JEQ  sig2done

sig2loop:
	VMOVUPS (SI), Y1
	VXORPS  Y0, Y0, Y0
	VSUBPS  Y1, Y0, Y0 // t = -x
	VMAXPS  Y0, Y5, Y0 // clamp to [-100, 100]; NaN (second operand) passes
	VMINPS  Y0, Y4, Y0
	EXP8
	VADDPS  Y6, Y3, Y3 // 1 + e
	VDIVPS  Y3, Y6, Y3 // 1 / (1 + e)
	VMOVUPS Y3, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sig2loop

sig2done:
	VZEROUPPER
	RET

// func expShiftAVX2(n int, src, dst *float32, shift float32) float32
//
// dst[i] = exp(src[i] - shift) for i < n (n a multiple of 8), returning
// their sum (see expShiftAVX512).
TEXT ·expShiftAVX2(SB), NOSPLIT, $0-36
	MOVQ n+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ dst+16(FP), DI
	EXPCONST8
	VXORPS X4, X4, X4 // Y4 is the running sum; the upper clamp is reloaded
	SHRQ   $3, CX
	JEQ    exp2done

exp2loop:
	VMOVUPS      (SI), Y0
	VBROADCASTSS shift+24(FP), Y1
	VSUBPS       Y1, Y0, Y0 // t = x - shift
	VMAXPS       Y0, Y5, Y0 // clamp to [-100, 100], NaN passes
	VBROADCASTSS expConst<>+44(SB), Y1
	VMINPS       Y0, Y1, Y0
	EXP8
	VMOVUPS      Y3, (DI)
	VADDPS       Y3, Y4, Y4
	ADDQ         $32, SI
	ADDQ         $32, DI
	DECQ         CX
	JNZ          exp2loop

exp2done:
	VEXTRACTF128 $1, Y4, X1
	VADDPS       X1, X4, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+32(FP)
	VZEROUPPER
	RET
