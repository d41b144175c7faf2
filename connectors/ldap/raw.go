package ldap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// rawConn is a minimal LDAP client for the one hot path, the paged searches of a Read over a
// connection bound with a simple (or anonymous) bind. go-ldap hands every response through three
// goroutines and decodes it into a tree of packets; on a busy two-core machine that made a read
// of 20,000 users three times slower than ldapsearch. rawConn decodes each response in place on
// the caller's goroutine. Everything else (Kerberos binds, range retrieval, in-chain searches,
// check) uses go-ldap.
type rawConn struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
	nextID  int64
	buf     []byte
}

// errRaw marks protocol errors found by rawConn's decoder.
var errRaw = errors.New("malformed LDAP message")

// dialRaw connects, upgrades with StartTLS when configured, and binds simply.
func (d *dialer) dialRaw() (*rawConn, error) {
	u, err := url.Parse(d.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ldap: url: %w", err)
	}
	host := u.Host
	if u.Port() == "" {
		if u.Scheme == "ldaps" {
			host = net.JoinHostPort(u.Hostname(), "636")
		} else {
			host = net.JoinHostPort(u.Hostname(), "389")
		}
	}
	nd := &net.Dialer{Timeout: d.cfg.DialTimeout}
	var c net.Conn
	if u.Scheme == "ldaps" {
		c, err = tls.DialWithDialer(nd, "tcp", host, d.tls)
	} else {
		c, err = nd.Dial("tcp", host)
	}
	if err != nil {
		return nil, fmt.Errorf("ldap: dial %s: %w", d.cfg.URL, explainTLS(err))
	}
	rc := &rawConn{conn: c, r: bufio.NewReaderSize(c, 64<<10), timeout: d.cfg.RequestTimeout}
	fail := func(err error) (*rawConn, error) {
		_ = c.Close()
		return nil, err
	}
	if d.cfg.StartTLS {
		op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationExtendedRequest, nil, "")
		op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.1466.20037", ""))
		if err := rc.roundTrip(op, goldap.ApplicationExtendedResponse); err != nil {
			return fail(fmt.Errorf("ldap: starttls with %s: %w", d.cfg.URL, err))
		}
		tc := tls.Client(c, d.tls)
		_ = tc.SetDeadline(time.Now().Add(d.cfg.DialTimeout))
		if err := tc.Handshake(); err != nil {
			return fail(fmt.Errorf("ldap: starttls with %s: %w", d.cfg.URL, explainTLS(err)))
		}
		_ = tc.SetDeadline(time.Time{})
		rc.conn, rc.r = tc, bufio.NewReaderSize(tc, 64<<10)
	}
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationBindRequest, nil, "")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 3, ""))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, d.cfg.BindDN, ""))
	op.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, d.password.Reveal(), ""))
	if err := rc.roundTrip(op, goldap.ApplicationBindResponse); err != nil {
		if d.cfg.BindDN == "" {
			return fail(fmt.Errorf("ldap: anonymous bind: %w", err))
		}
		return fail(fmt.Errorf("ldap: bind as %q: %w", d.cfg.BindDN, err))
	}
	return rc, nil
}

// Close sends an unbind and closes the connection.
func (rc *rawConn) Close() error {
	_ = rc.write(ber.Encode(ber.ClassApplication, ber.TypePrimitive, goldap.ApplicationUnbindRequest, nil, ""), nil)
	return rc.conn.Close()
}

func (rc *rawConn) write(op *ber.Packet, controls []goldap.Control) error {
	rc.nextID++
	env := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	env.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, rc.nextID, ""))
	env.AppendChild(op)
	if len(controls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "")
		for _, c := range controls {
			cs.AppendChild(c.Encode())
		}
		env.AppendChild(cs)
	}
	if rc.timeout > 0 {
		_ = rc.conn.SetWriteDeadline(time.Now().Add(rc.timeout))
	}
	_, err := rc.conn.Write(env.Bytes())
	return err
}

// roundTrip sends op and reads one response of the given application tag, checking its
// result code.
func (rc *rawConn) roundTrip(op *ber.Packet, want ber.Tag) error {
	if err := rc.write(op, nil); err != nil {
		return err
	}
	if rc.timeout > 0 {
		_ = rc.conn.SetReadDeadline(time.Now().Add(rc.timeout))
	}
	tag, body, _, err := rc.readMessage()
	if err != nil {
		return err
	}
	if tag != want {
		return fmt.Errorf("response tag %d, want %d: %w", tag, want, errRaw)
	}
	return resultError(body)
}

// readMessage reads one LDAPMessage for the current request and returns its protocolOp's
// application tag and contents, and its controls. Unsolicited notifications (message id 0,
// such as a notice of disconnection) are errors.
func (rc *rawConn) readMessage() (ber.Tag, []byte, []byte, error) {
	hdr, err := rc.r.ReadByte()
	if err != nil {
		return 0, nil, nil, netError(err)
	}
	if hdr != 0x30 {
		return 0, nil, nil, fmt.Errorf("message starts with 0x%02x: %w", hdr, errRaw)
	}
	n, err := readLength(rc.r)
	if err != nil {
		return 0, nil, nil, netError(err)
	}
	if n > 256<<20 {
		return 0, nil, nil, fmt.Errorf("message of %d bytes: %w", n, errRaw)
	}
	if cap(rc.buf) < n {
		rc.buf = make([]byte, n)
	}
	msg := rc.buf[:n]
	if _, err := io.ReadFull(rc.r, msg); err != nil {
		return 0, nil, nil, netError(err)
	}
	idTag, id, rest, err := tlv(msg)
	if err != nil || idTag != 0x02 {
		return 0, nil, nil, fmt.Errorf("message id: %w", errRaw)
	}
	opTag, op, rest, err := tlv(rest)
	if err != nil || opTag&0xc0 != 0x40 {
		return 0, nil, nil, fmt.Errorf("protocol op: %w", errRaw)
	}
	var controls []byte
	if len(rest) > 0 {
		if t, c, _, err := tlv(rest); err == nil && t == 0xa0 {
			controls = c
		}
	}
	if !(len(id) == 1 && id[0] == 0) && int64(beInt(id)) != rc.nextID {
		return 0, nil, nil, fmt.Errorf("response to message %d, want %d: %w", beInt(id), rc.nextID, errRaw)
	}
	tag := ber.Tag(opTag & 0x1f)
	if len(id) == 1 && id[0] == 0 {
		msg := "server sent an unsolicited notification"
		if err := resultError(op); err != nil {
			return 0, nil, nil, goldap.NewError(goldap.ErrorNetwork, fmt.Errorf("%s: %w", msg, err))
		}
		return 0, nil, nil, goldap.NewError(goldap.ErrorNetwork, errors.New(msg))
	}
	return tag, op, controls, nil
}

func netError(err error) error {
	return goldap.NewError(goldap.ErrorNetwork, fmt.Errorf("read LDAP response: %w", err))
}

// resultError turns an LDAPResult's code and diagnostic message into a *goldap.Error, or nil
// for success.
func resultError(body []byte) error {
	t, code, rest, err := tlv(body)
	if err != nil || t != 0x0a {
		return fmt.Errorf("result code: %w", errRaw)
	}
	c := uint16(beInt(code))
	if c == goldap.LDAPResultSuccess {
		return nil
	}
	var diag string
	if _, _, rest, err = tlv(rest); err == nil { // matchedDN
		if _, d, _, err := tlv(rest); err == nil {
			diag = string(d)
		}
	}
	return goldap.NewError(c, errors.New(diag))
}

// page sends one page of a paged search and streams its entries to each; it returns the
// server's cookie (empty on the last page) and the number of references skipped.
func (rc *rawConn) page(ctx context.Context, req *goldap.SearchRequest, each func(*goldap.Entry) error) (cookie []byte, refs int, err error) {
	filter, err := goldap.CompileFilter(req.Filter)
	if err != nil {
		return nil, 0, err
	}
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchRequest, nil, "")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, req.BaseDN, ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.Scope), ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, uint64(req.DerefAliases), ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(req.SizeLimit), ""))
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, uint64(req.TimeLimit), ""))
	op.AppendChild(ber.NewBoolean(ber.ClassUniversal, ber.TypePrimitive, ber.TagBoolean, req.TypesOnly, ""))
	op.AppendChild(filter)
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, a := range req.Attributes {
		attrs.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a, ""))
	}
	op.AppendChild(attrs)
	if err := rc.write(op, req.Controls); err != nil {
		return nil, 0, netError(err)
	}
	stop := context.AfterFunc(ctx, func() { _ = rc.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		if rc.timeout > 0 {
			_ = rc.conn.SetReadDeadline(time.Now().Add(rc.timeout))
		}
		if ctx.Err() != nil {
			return nil, refs, ctx.Err()
		}
		tag, body, controls, err := rc.readMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil, refs, ctx.Err()
			}
			return nil, refs, err
		}
		switch tag {
		case goldap.ApplicationSearchResultEntry:
			e, err := decodeEntry(body)
			if err != nil {
				return nil, refs, err
			}
			if err := each(e); err != nil {
				return nil, refs, err
			}
		case goldap.ApplicationSearchResultReference:
			refs++
		case goldap.ApplicationSearchResultDone:
			if err := resultError(body); err != nil {
				return nil, refs, err
			}
			cookie, err := pagingCookie(controls)
			return cookie, refs, err
		default:
			return nil, refs, fmt.Errorf("unexpected response tag %d: %w", tag, errRaw)
		}
	}
}

// decodeEntry decodes a SearchResultEntry. The values are copied out of the read buffer.
func decodeEntry(body []byte) (*goldap.Entry, error) {
	t, dn, rest, err := tlv(body)
	if err != nil || t != 0x04 {
		return nil, fmt.Errorf("entry name: %w", errRaw)
	}
	t, list, _, err := tlv(rest)
	if err != nil || t != 0x30 {
		return nil, fmt.Errorf("entry attributes: %w", errRaw)
	}
	// One allocation holds every value's bytes; strings are made from it.
	store := make([]byte, len(list))
	copy(store, list)
	list = store
	e := &goldap.Entry{DN: string(dn)}
	for len(list) > 0 {
		var attr []byte
		if t, attr, list, err = tlv(list); err != nil || t != 0x30 {
			return nil, fmt.Errorf("attribute: %w", errRaw)
		}
		t, name, vals, err := tlv(attr)
		if err != nil || t != 0x04 {
			return nil, fmt.Errorf("attribute name: %w", errRaw)
		}
		if t, vals, _, err = tlv(vals); err != nil || t != 0x31 {
			return nil, fmt.Errorf("attribute %s values: %w", name, errRaw)
		}
		a := &goldap.EntryAttribute{Name: string(name)}
		for len(vals) > 0 {
			var v []byte
			if t, v, vals, err = tlv(vals); err != nil || t != 0x04 {
				return nil, fmt.Errorf("attribute %s value: %w", name, errRaw)
			}
			a.ByteValues = append(a.ByteValues, v)
			a.Values = append(a.Values, string(v))
		}
		e.Attributes = append(e.Attributes, a)
	}
	return e, nil
}

// pagingCookie finds the paged results control among the response controls.
func pagingCookie(controls []byte) ([]byte, error) {
	for len(controls) > 0 {
		t, c, rest, err := tlv(controls)
		if err != nil || t != 0x30 {
			return nil, fmt.Errorf("control: %w", errRaw)
		}
		controls = rest
		t, oid, c, err := tlv(c)
		if err != nil || t != 0x04 || string(oid) != goldap.ControlTypePaging {
			continue
		}
		for len(c) > 0 {
			var v []byte
			if t, v, c, err = tlv(c); err != nil {
				return nil, fmt.Errorf("paging control: %w", errRaw)
			}
			if t != 0x04 { // criticality
				continue
			}
			// realSearchControlValue ::= SEQUENCE { size INTEGER, cookie OCTET STRING }
			t, seq, _, err := tlv(v)
			if err != nil || t != 0x30 {
				return nil, fmt.Errorf("paging control value: %w", errRaw)
			}
			if _, _, seq, err = tlv(seq); err != nil {
				return nil, fmt.Errorf("paging control size: %w", errRaw)
			}
			t, cookie, _, err := tlv(seq)
			if err != nil || t != 0x04 {
				return nil, fmt.Errorf("paging control cookie: %w", errRaw)
			}
			return append([]byte(nil), cookie...), nil
		}
	}
	return nil, nil
}

// tlv splits one BER element (low tag numbers only, as LDAP uses) off b.
func tlv(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errRaw
	}
	tag = b[0]
	n, l := int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 4 || len(b) < 2+k {
			return 0, nil, nil, errRaw
		}
		n = 0
		for _, x := range b[2 : 2+k] {
			n = n<<8 | int(x)
		}
		l += k
	}
	if n < 0 || len(b)-l < n {
		return 0, nil, nil, errRaw
	}
	return tag, b[l : l+n], b[l+n:], nil
}

func readLength(r *bufio.Reader) (int, error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if b&0x80 == 0 {
		return int(b), nil
	}
	k := int(b & 0x7f)
	if k == 0 || k > 4 {
		return 0, fmt.Errorf("length of %d bytes: %w", k, errRaw)
	}
	n := 0
	for range k {
		if b, err = r.ReadByte(); err != nil {
			return 0, err
		}
		n = n<<8 | int(b)
	}
	return n, nil
}

// beInt decodes a big-endian two's complement integer of at most 8 bytes.
func beInt(b []byte) int64 {
	var n int64
	if len(b) > 0 && b[0]&0x80 != 0 {
		n = -1
	}
	for _, x := range b {
		n = n<<8 | int64(x)
	}
	return n
}
