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
