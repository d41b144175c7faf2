// Package bench measures scimbridge against the embedded Identity Center: it generates a synthetic
// directory, runs `scimbridge sync` as a child process for each phase (initial sync, no-change
// sync, a sync after churn) and reports, per phase, the write requests against the lower bound,
// the 429s received, the wall time against the time the lower bound needs at the target's rate,
// and the child's peak RSS and CPU time.
package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Spec sizes a synthetic directory.
type Spec struct {
	Users       int
	Groups      int
	Memberships int // direct user memberships, before nesting is flattened
	Seed        uint64
}

// user is one generated user.
type user struct {
	id, first, last, dept, title, manager string
	email                                 string
	suspended                             bool
}

// group is one generated group: direct user members and nested child groups.
type group struct {
	id, name string
	members  []int // user indexes
	children []int // group indexes
}

// Directory is a generated directory that can be changed and written as the file connector's YAML.
type Directory struct {
	spec   Spec
	rng    *rand.Rand
	users  []user
	alive  []bool
	groups []group
	nextID int
}

var (
	firsts = []string{"Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "John", "Ken", "Katherine", "Linus", "Margaret", "Mary", "Niklaus", "Radia", "Shafi", "Tim", "Whitfield"}
	lasts  = []string{"Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper", "Lamarr", "Backus", "Thompson", "Johnson", "Torvalds", "Hamilton", "Jackson", "Wirth", "Perlman", "Goldwasser", "Berners-Lee", "Diffie"}
	depts  = []string{"Engineering", "Finance", "Sales", "Marketing", "Support", "Legal", "People", "IT", "Security", "Research"}
	titles = []string{"Engineer", "Senior Engineer", "Manager", "Analyst", "Director", "Specialist", "Architect", "Consultant"}
)

// Generate builds a directory: users with a manager chain and departments; groups whose sizes
// follow a Zipf-like law (a few groups of thousands, many of tens) adding up to Memberships direct
// memberships; one group in ten nests another.
func Generate(s Spec) *Directory {
	d := &Directory{spec: s, rng: rand.New(rand.NewPCG(s.Seed, 0x5c1b))}
	for i := range s.Users {
		d.users = append(d.users, d.newUser(i))
		d.alive = append(d.alive, true)
	}
	d.nextID = s.Users
	sizes := zipfSizes(s.Groups, s.Memberships, s.Users)
	for gi := range s.Groups {
		g := group{id: fmt.Sprintf("g-%05d", gi), name: fmt.Sprintf("team-%05d", gi)}
		g.members = d.sample(sizes[gi])
		if gi%10 == 0 && gi+1 < s.Groups {
			g.children = []int{gi + 1 + d.rng.IntN(min(20, s.Groups-gi-1))}
		}
		d.groups = append(d.groups, g)
	}
	return d
}

func (d *Directory) newUser(i int) user {
	f, l := firsts[d.rng.IntN(len(firsts))], lasts[d.rng.IntN(len(lasts))]
	u := user{
		id: fmt.Sprintf("u-%07d", i), first: f, last: l,
		dept: depts[d.rng.IntN(len(depts))], title: titles[d.rng.IntN(len(titles))],
	}
	u.email = fmt.Sprintf("%s.%s.%d@example.com", lower(f), lower(l), i)
	if i > 0 {
		u.manager = fmt.Sprintf("u-%07d", d.rng.IntN(i))
	}
	u.suspended = d.rng.IntN(200) == 0
	return u
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// zipfSizes splits total over n groups in proportion to 1/(rank+1), each at least 1 and at most cap.
func zipfSizes(n, total, cap int) []int {
	if n == 0 {
		return nil
	}
	var h float64
	for i := range n {
		h += 1 / float64(i+1)
	}
	sizes := make([]int, n)
	sum := 0
	for i := range n {
		sizes[i] = max(1, min(cap, int(math.Round(float64(total)/(h*float64(i+1))))))
		sum += sizes[i]
	}
	for i := 0; sum < total && i < 10*n; i++ { // top up the small groups after rounding and caps
		if j := n - 1 - i%n; sizes[j] < cap {
			sizes[j]++
			sum++
		}
	}
	return sizes
}

// sample picks k distinct living users.
func (d *Directory) sample(k int) []int {
	k = min(k, len(d.users))
	if k*2 > len(d.users) {
		p := d.rng.Perm(len(d.users))[:k]
		slices.Sort(p)
		return p
	}
	seen := make(map[int]bool, k)
	out := make([]int, 0, k)
	for len(out) < k {
		i := d.rng.IntN(len(d.users))
		if !seen[i] && d.alive[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// Churn changes the directory the way a busy week does: changed of every thousand users get a new
// title, department or email; moved of every thousand leave one group for another; left of every
// thousand leave the company. It returns how many users it changed, moved and removed.
func (d *Directory) Churn(changedPerMille, movedPerMille, leftPerMille int) (changed, moved, left int) {
	n := len(d.users)
	pick := func(perMille int) []int {
		k := n * perMille / 1000
		var out []int
		for _, i := range d.rng.Perm(n) {
			if len(out) == k {
				break
			}
			if d.alive[i] {
				out = append(out, i)
			}
		}
		return out
	}
	for _, i := range pick(changedPerMille) {
		u := &d.users[i]
		switch d.rng.IntN(3) {
		case 0:
			u.title = "Principal " + u.title
		case 1:
			u.dept = depts[(slices.Index(depts, u.dept)+1)%len(depts)]
		default:
			u.email = "renamed." + u.email
		}
		changed++
	}
	if len(d.groups) >= 2 {
		for _, i := range pick(movedPerMille) {
			from := -1
			for gi := range d.groups {
				if slices.Contains(d.groups[gi].members, i) {
					from = gi
					break
				}
			}
			to := d.rng.IntN(len(d.groups))
			if from < 0 || to == from || slices.Contains(d.groups[to].members, i) {
				continue
			}
			d.groups[from].members = slices.DeleteFunc(d.groups[from].members, func(m int) bool { return m == i })
			d.groups[to].members = append(d.groups[to].members, i)
			moved++
		}
	}
	for _, i := range pick(leftPerMille) {
		d.alive[i] = false
		left++
	}
	return changed, moved, left
}

// Counts returns the living users, the groups and the direct memberships of living users.
func (d *Directory) Counts() (users, groups, memberships int) {
	for _, a := range d.alive {
		if a {
			users++
		}
	}
	for _, g := range d.groups {
		for _, m := range g.members {
			if d.alive[m] {
				memberships++
			}
		}
	}
	return users, len(d.groups), memberships
}

// WriteYAML writes the directory in the file connector's format.
func (d *Directory) WriteYAML(w io.Writer) error {
	b := bufio.NewWriterSize(w, 1<<20)
	b.WriteString("users:\n")
	for i, u := range d.users {
		if !d.alive[i] {
			continue
		}
		fmt.Fprintf(b, "  - id: %s\n    userName: %s\n    givenName: %s\n    familyName: %s\n    email: %s\n    title: %s\n    department: %s\n",
			u.id, u.email, u.first, u.last, u.email, strconv.Quote(u.title), u.dept)
		if u.manager != "" {
			if mi, _ := strconv.Atoi(u.manager[2:]); d.alive[mi] {
				fmt.Fprintf(b, "    manager: %s\n", u.manager)
			}
		}
		if u.suspended {
			b.WriteString("    suspended: true\n")
		}
	}
	b.WriteString("groups:\n")
	for _, g := range d.groups {
		fmt.Fprintf(b, "  - id: %s\n    name: %s\n    members:\n", g.id, g.name)
		for _, m := range g.members {
			if d.alive[m] {
				fmt.Fprintf(b, "      - %s\n", d.users[m].id)
			}
		}
		for _, c := range g.children {
			fmt.Fprintf(b, "      - %s\n", d.groups[c].id)
		}
	}
	return b.Flush()
}
