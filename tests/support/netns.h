#pragma once
// netns_network: a true network for fault tests (root; ../shared/MACHINE.md).
// Hosts 1..N each get a network namespace of their own, joined by a veth
// pair to a bridge in the test's namespace; the bridge's address (the hub)
// is where the test's own processes (ZooKeeper, the clients) are reached.
// cut(host) takes the host's link down: a silent partition, no RST and no
// FIN, every packet to or from it lost, as a pulled cable would. heal(host)
// brings it back; connections that did not time out meanwhile go on.
//
// Everything lives on 10.231.X.0/24 (X free when the network is made) on
// interfaces and namespaces named after the test's PID; the destructor
// deletes them, and a new network first deletes those of tests that died.

#include <cstdint>
#include <string>
#include <vector>

namespace runnel::testing {

class netns_network {
 public:
  explicit netns_network(int hosts);
  ~netns_network();
  netns_network(const netns_network&) = delete;             // owns namespaces and links
  netns_network& operator=(const netns_network&) = delete;  // owns namespaces and links

  // Root and the `ip` command (Debian iproute2).
  static bool available();
  // Whether every namespace and link was made (the error otherwise).
  [[nodiscard]] bool ready() const { return error_.empty(); }
  [[nodiscard]] const std::string& error() const { return error_; }

  // The bridge's address, in the test's namespace.
  [[nodiscard]] std::string hub_address() const;
  // Host `host`'s address, inside its namespace.
  [[nodiscard]] std::string address(int host) const;
  // argv to put before a command to run it in host `host`'s namespace (it
  // execs in place: the PID is the command's).
  [[nodiscard]] std::vector<std::string> launcher(int host) const;

  void cut(int host);
  void heal(int host);

 private:
  [[nodiscard]] std::string ns_name(int host) const;
  [[nodiscard]] std::string link_name(int host) const;
  bool ip(const std::vector<std::string>& args);

  int hosts_;
  long pid_;
  int subnet_ = 0;  // X of 10.231.X.0/24
  std::string bridge_;
  std::string error_;
};

}  // namespace runnel::testing
