// Command exit ends in the way os.Args[1] selects, to test how the host
// reports exits, panics, deadlocks and runaway guests.
package main

import (
	"fmt"
	"os"
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
