#include "tests/support/netns.h"

#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tests/support/broker_process.h"

namespace runnel::testing {

namespace {

const char* ip_binary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return nullptr;
}

command_result run_ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv{ip_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, {}, 20);
}

// The PID in a name "<prefix><pid>..." (digits after the prefix), or -1.
long pid_in(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return -1;
  std::size_t end = prefix.size();
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  return end == prefix.size() ? -1 : std::stol(name.substr(prefix.size(), end - prefix.size()));
}

bool alive(long pid) { return std::filesystem::exists("/proc/" + std::to_string(pid)); }

// Namespaces and bridges left by tests that died (their veths go with them).
void delete_strays() {
  std::istringstream ns(run_ip({"netns", "list"}).out);
  for (std::string line; std::getline(ns, line);) {
    const std::string name = line.substr(0, line.find(' '));
    if (const long pid = pid_in(name, "rn"); pid > 0 && !alive(pid)) (void)run_ip({"netns", "del", name});
  }
  std::istringstream links(run_ip({"-o", "link", "show", "type", "bridge"}).out);
  for (std::string line; std::getline(links, line);) {
    // "12: rnbr4711: <BROADCAST,...> ..."
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const std::string name = line.substr(colon + 2, line.find(':', colon + 2) - colon - 2);
    if (const long pid = pid_in(name, "rnbr"); pid > 0 && !alive(pid)) (void)run_ip({"link", "del", name});
  }
}

// A third octet X of 10.231.X.0/24 that no address on this host uses.
int free_subnet(long pid) {
  const std::string addrs = run_ip({"-o", "-4", "addr", "show"}).out;
  for (int i = 0; i < 250; ++i) {
    const int x = static_cast<int>((pid + i) % 250) + 1;
    if (addrs.find("10.231." + std::to_string(x) + ".") == std::string::npos) return x;
  }
  return 0;
}

}  // namespace

bool netns_network::available() { return ::geteuid() == 0 && ip_binary() != nullptr; }

netns_network::netns_network(int hosts) : hosts_(hosts), pid_(::getpid()), bridge_("rnbr" + std::to_string(pid_)) {
  if (!available()) {
    error_ = "network namespaces need root and the ip command (Debian iproute2)";
    return;
  }
  delete_strays();
  subnet_ = free_subnet(pid_);
  if (subnet_ == 0) {
    error_ = "no free 10.231.X.0/24";
    return;
  }
  const std::string net = "10.231." + std::to_string(subnet_) + ".";
  if (!ip({"link", "add", bridge_, "type", "bridge"}) || !ip({"addr", "add", net + "1/24", "dev", bridge_}) ||
      !ip({"link", "set", bridge_, "up"})) {
    return;
  }
  for (int h = 1; h <= hosts_; ++h) {
    const std::string ns = ns_name(h);
    const std::string outside = link_name(h);
    const std::string inside = "rnp" + std::to_string(pid_) + "h" + std::to_string(h);
    const bool ok = ip({"netns", "add", ns}) &&
                    ip({"link", "add", outside, "type", "veth", "peer", "name", inside}) &&
                    ip({"link", "set", inside, "netns", ns}) && ip({"link", "set", outside, "master", bridge_}) &&
                    ip({"link", "set", outside, "up"}) && ip({"-n", ns, "link", "set", "dev", inside, "name", "eth0"}) &&
                    ip({"-n", ns, "addr", "add", address(h) + "/24", "dev", "eth0"}) &&
                    ip({"-n", ns, "link", "set", "eth0", "up"}) && ip({"-n", ns, "link", "set", "lo", "up"});
    if (!ok) return;
  }
}

netns_network::~netns_network() {
  if (!available()) return;
  for (int h = 1; h <= hosts_; ++h) (void)run_ip({"netns", "del", ns_name(h)});
  (void)run_ip({"link", "del", bridge_});
}

bool netns_network::ip(const std::vector<std::string>& args) {
  auto r = run_ip(args);
  if (r.exit_code == 0) return true;
  if (error_.empty()) {
    error_ = "ip";
    for (const auto& a : args) error_ += " " + a;
    error_ += ": " + r.err;
  }
  return false;
}

std::string netns_network::hub_address() const { return "10.231." + std::to_string(subnet_) + ".1"; }

std::string netns_network::address(int host) const {
  return "10.231." + std::to_string(subnet_) + "." + std::to_string(10 + host);
}

std::vector<std::string> netns_network::launcher(int host) const { return {ip_binary(), "netns", "exec", ns_name(host)}; }

void netns_network::cut(int host) { (void)ip({"link", "set", link_name(host), "down"}); }

void netns_network::heal(int host) { (void)ip({"link", "set", link_name(host), "up"}); }

std::string netns_network::ns_name(int host) const { return "rn" + std::to_string(pid_) + "h" + std::to_string(host); }

std::string netns_network::link_name(int host) const {
  return "rnv" + std::to_string(pid_) + "h" + std::to_string(host);
}

}  // namespace runnel::testing
