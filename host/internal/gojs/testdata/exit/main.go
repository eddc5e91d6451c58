// Command exit ends in the way os.Args[1] selects, to test how the host
// reports exits, panics, deadlocks and runaway guests.
package main

import (
	"fmt"
	"os"
	"sort"
	"syscall/js"
	"time"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	fmt.Println("mode", mode)
	switch mode {
	case "ok":
	case "exit3":
		os.Exit(3)
	case "nested-exit":
		// Exit from inside a callback, inside a host call: every frame must unwind.
		f := js.FuncOf(func(js.Value, []js.Value) any { os.Exit(4); return nil })
		f.Invoke()
		fmt.Println("not reached")
	case "panic":
		var m map[string]int
		if len(os.Args) > 5 {
			m = map[string]int{}
		}
		m["x"] = 1 // nil map write: runtime panic
	case "panic-msg":
		panic("boom from guest")
	case "deadlock":
		ch := make(chan int)
		<-ch
	case "sleep":
		time.Sleep(time.Hour)
		fmt.Println("woke after an hour")
	case "fs":
		// The browser-like fs: no files, errors rather than crashes.
		_, err := os.ReadFile("/etc/hostname")
		fmt.Println("read:", err)
		err = os.WriteFile("/tmp/x", []byte("x"), 0o644)
		fmt.Println("write:", err)
		_, err = os.Stat("/")
		fmt.Println("stat:", err)
		fmt.Println("pid:", os.Getpid())
	case "spin-clock":
		// Busy, but reading the clock (an import call) now and then.
		x := 0
		for {
			x++
			if x%1000 == 0 && time.Now().IsZero() {
				break
			}
		}
		fmt.Println(x)
	case "work":
		// A fixed amount of loop-heavy Go code (sorting, hashing, a
		// byte loop), no host calls: for timing the compiled guest.
		fmt.Println("work", work())
	case "spin":
		x := 0
		for {
			x++
			if x < 0 {
				break
			}
		}
		fmt.Println(x)
	}
	fmt.Println("end", mode)
}

//go:noinline
func mix(h, v uint32) uint32 { return (h ^ v) * 16777619 }

func work() uint32 {
	buf := make([]byte, 1<<20)
	var h uint32 = 2166136261
	for round := 0; round < 8; round++ {
		for i := range buf {
			buf[i] = byte(i*7 + round)
		}
		for i := range buf {
			h = mix(h, uint32(buf[i]))
		}
		xs := make([]int, 1<<15)
		for i := range xs {
			xs[i] = int(mix(h, uint32(i)))
		}
		sort.Ints(xs)
		h = mix(h, uint32(xs[len(xs)/2]))
	}
	return h
}
