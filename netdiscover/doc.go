// Package netdiscover finds the addresses the CNI plugins gave a Mesos
// container, from inside the container's network namespace, over netlink.
//
// Mesos sends the executor no event carrying them (MESOS-6281), yet the
// executor must report them in its status updates, hand them to the task
// and announce them in ZooKeeper serversets. The Mesos network/cni isolator
// names the interfaces after the order of ExecutorInfo.container.network_infos:
// the N-th NetworkInfo with a name gets ethN, unnamed ones take no index.
// Discover maps addresses back to network names that way.
//
// An address is usable when it is a global-scope IPv4 or IPv6 unicast
// address that is neither loopback nor link-local (whatever its scope says),
// nor still tentative, nor DAD-failed, nor deprecated. Discover waits for
// tentative IPv6 addresses and for interfaces or addresses not there yet,
// up to Options.TentativeWait; Watch reports every later change.
//
// Netlink notifications are only hints that something changed: bursts are
// collapsed, the whole state is dumped again and compared, and dumps the
// kernel marks interrupted are read again. Only Linux is supported.
package netdiscover
