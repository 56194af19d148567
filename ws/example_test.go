package ws_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"

	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/websocket/ws"
)

// A server that upgrades and echoes, and a client that offers base64.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Upgrade(w, r, &ws.Options{Base64: true})
		if err != nil {
			return // Upgrade has answered with an HTTP error
		}
		defer c.Close()
		io.Copy(c, c)  // echo until the client's Close (io.EOF)
		c.CloseWrite() // answer it
	}))
	defer srv.Close()

	u, _ := url.Parse("ws://" + srv.Listener.Addr().String() + "/")
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := ws.Client(nc, u, &ws.Options{Base64: true})
	if err != nil {
		nc.Close()
		fmt.Println(err)
		return
	}
	fmt.Println("subprotocol:", c.Subprotocol())
	c.Write([]byte("Hello"))
	c.CloseWrite()
	b, err := io.ReadAll(c)
	fmt.Printf("%q %v\n", b, err)
	fmt.Println(c.Close())
	// Output:
	// subprotocol: base64
	// "Hello" <nil>
	// <nil>
}

// ParseURL checks a bridge's URL as both programs do: ws or wss, a host, no user information
// or fragment. Its error does not repeat the URL.
func ExampleParseURL() {
	for _, s := range []string{"wss://bridge.example/secret-path", "https://bridge.example/", "wss://user@bridge.example/"} {
		u, err := ws.ParseURL(s)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(u.Scheme, u.Host, u.Path)
	}
	// Output:
	// wss bridge.example /secret-path
	// error: want ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH
	// error: want ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH
}
