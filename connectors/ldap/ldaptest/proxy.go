package ldaptest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy in front of an LDAP server that counts the LDAP messages clients send
// (requests: binds, searches, extended operations, abandons, unbinds). It reads plain LDAP
// only: point a client at it without TLS or StartTLS.
type Proxy struct {
	// URL is ldap://127.0.0.1:port, the proxy's address.
	URL string

	requests atomic.Int64
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// StartProxy proxies to the LDAP server at addr (host:port) until the test ends.
func StartProxy(tb testing.TB, addr string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("ldaptest: proxy: %v", err)
	}
	p := &Proxy{URL: "ldap://" + ln.Addr().String(), ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.count(c, up); _ = up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	tb.Cleanup(p.Close)
	return p
}

// Requests returns how many LDAP messages clients have sent so far.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// count copies client to server message by message (BER: tag, length, content), counting each.
func (p *Proxy) count(from io.Reader, to io.Writer) {
	r := bufio.NewReader(from)
	for {
		msg, err := readMessage(r)
		if err != nil {
			return
		}
		p.requests.Add(1)
		if _, err := to.Write(msg); err != nil {
			return
		}
	}
}

// readMessage reads one BER element (an LDAPMessage) whole.
func readMessage(r *bufio.Reader) ([]byte, error) {
	tag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	first, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	head := []byte{tag, first}
	n := int(first)
	if first&0x80 != 0 {
		k := int(first & 0x7f)
		if k == 0 || k > 4 {
			return nil, errors.New("ldaptest: proxy: unsupported BER length")
		}
		n = 0
		for range k {
			b, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			head = append(head, b)
			n = n<<8 | int(b)
		}
	}
	msg := make([]byte, len(head)+n)
	copy(msg, head)
	if _, err := io.ReadFull(r, msg[len(head):]); err != nil {
		return nil, err
	}
	return msg, nil
}
