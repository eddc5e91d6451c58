// Command hello prints to stdout and stderr and reads its arguments and
// environment, to check the basic runtime imports.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	fmt.Println("hello, world")
	fmt.Fprintln(os.Stderr, "to stderr")
	fmt.Println("args:", len(os.Args) >= 1)
	fmt.Println("env GOJS_TEST:", os.Getenv("GOJS_TEST"))
	println("println works")
	fmt.Println("year ok:", time.Now().Year() >= 2024)
	wd, err := os.Getwd()
	fmt.Println("getwd error:", err != nil, wd != "")
}
