package googletest

import (
	"bytes"
	"net/http"
	"sync"

	admin "google.golang.org/api/admin/directory/v1"
)

// pusher delivers Users.Watch notifications to the channels' addresses.
type pusher struct {
	client  *http.Client
	rewrite func(address string) string
	wg      sync.WaitGroup
	msgs    map[string]int64 // last message number per channel
}

// DeliverPushes makes the admin user methods (CreateUser: add; UpdateUser, RenameUser,
// SuspendUser: update; DeleteUser: delete) POST a push notification, as Google does, to every
// open watch channel of that event, through client; rewrite, when set, maps a channel's
// https address to where the test's webhook listens. Deliveries run in the background;
// WaitPushes waits for them. Without DeliverPushes nothing is pushed (Notify builds a
// callback by hand).
func (s *Server) DeliverPushes(client *http.Client, rewrite func(address string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pusher = &pusher{client: client, rewrite: rewrite, msgs: map[string]int64{}}
}

// WaitPushes waits until every push notification started so far was delivered (or failed).
func (s *Server) WaitPushes() {
	s.mu.Lock()
	p := s.pusher
	s.mu.Unlock()
	if p != nil {
		p.wg.Wait()
	}
}

// push sends event about u to the channels watching it. The caller holds s.mu.
func (s *Server) push(event string, u *admin.User) {
	p := s.pusher
	if p == nil {
		return
	}
	for _, c := range s.channels {
		if c.Params["event"] != event {
			continue
		}
		p.msgs[c.Id]++
		h, body := notification(c, event, u, p.msgs[c.Id])
		addr := c.Address
		if p.rewrite != nil {
			addr = p.rewrite(addr)
		}
		p.wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, addr, bytes.NewReader(body))
			if err != nil {
				return
			}
			req.Header = h
			if resp, err := p.client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
}
