package connectors

// flatten computes, for every group, the set of users it holds directly or through nested groups.
// users[g] are g's direct user members and subs[g] its direct member groups (indexes into the same
// slices); cycles are tolerated: every group of a cycle holds the users of the whole cycle. The
// result shares slices between groups with the same set; callers must not modify it. Sets are not
// sorted, but hold each user once.
//
// It runs in time linear in the size of the graph plus the size of the output: Tarjan's algorithm
// finds the strongly connected components in reverse topological order, so each component's set is
// built once from its own direct members and its children's finished sets.
func flatten(nUsers int, users, subs [][]int32) [][]int32 {
	n := len(subs)
	const unvisited = -1
	index := make([]int32, n)
	low := make([]int32, n)
	comp := make([]int32, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i], comp[i] = unvisited, unvisited
	}
	var (
		stack   []int32
		next    int32
		nComp   int32
		compSet [][]int32
		flat    = make([][]int32, n)
		mark    = make([]int32, nUsers)
		stamp   int32
		members []int32 // groups of the component being closed
	)
	for i := range mark {
		mark[i] = -1
	}

	closeComponent := func(root int32) {
		members = members[:0]
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[top] = false
			comp[top] = nComp
			members = append(members, top)
			if top == root {
				break
			}
		}
		c := nComp
		nComp++
		// Share the child's set when the component adds nothing of its own.
		if len(members) == 1 && len(users[members[0]]) == 0 {
			var only int32 = -1
			shared := true
			for _, s := range subs[members[0]] {
				if cs := comp[s]; cs != c {
					if only == -1 || only == cs {
						only = cs
					} else {
						shared = false
						break
					}
				}
			}
			if shared {
				var set []int32
				if only >= 0 {
					set = compSet[only]
				}
				compSet = append(compSet, set)
				flat[members[0]] = set
				return
			}
		}
		stamp = c
		var set []int32
		add := func(u int32) {
			if mark[u] != stamp {
				mark[u] = stamp
				set = append(set, u)
			}
		}
		for _, g := range members {
			for _, u := range users[g] {
				add(u)
			}
			for _, s := range subs[g] {
				if cs := comp[s]; cs != c {
					for _, u := range compSet[cs] {
						add(u)
					}
				}
			}
		}
		compSet = append(compSet, set)
		for _, g := range members {
			flat[g] = set
		}
	}

	// Iterative Tarjan, so that deep nesting cannot exhaust the stack.
	type frame struct {
		g    int32
		edge int
	}
	var call []frame
	for start := range n {
		if index[start] != unvisited {
			continue
		}
		call = append(call[:0], frame{g: int32(start)})
		index[start], low[start] = next, next
		next++
		stack = append(stack, int32(start))
		onStack[start] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			g := f.g
			if f.edge < len(subs[g]) {
				s := subs[g][f.edge]
				f.edge++
				switch {
				case index[s] == unvisited:
					index[s], low[s] = next, next
					next++
					stack = append(stack, s)
					onStack[s] = true
					call = append(call, frame{g: s})
				case onStack[s]:
					low[g] = min(low[g], index[s])
				}
				continue
			}
			if low[g] == index[g] {
				closeComponent(g)
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].g
				low[p] = min(low[p], low[g])
			}
		}
	}
	return flat
}
