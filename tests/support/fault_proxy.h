#pragma once
// fault_proxy: a userspace TCP proxy on 127.0.0.1 for network-fault tests
// (this kernel has no netem). Every connection accepted on port() is paired
// with one to the target port; one thread copies bytes both ways, as the
// current fault says:
//   pass            forward both ways (after `delay`, when one is set)
//   blackhole       forward nothing and read nothing: the peers' bytes wait
//                   in their kernels, new connections are held unconnected,
//                   and everything flows again when the fault is healed
//                   (TCP's retransmission across a partition); a peer only
//                   notices by its own timeouts
//   drop_responses  forward requests to the target, discard everything it
//                   answers; a connection that lost bytes is closed when
//                   the fault ends (its byte stream is broken)
//   refuse          reset every connection and every new one at once (the
//                   target unreachable, the RST kind)
// A side that closes ends the connection once what is queued for the other
// side is delivered (no half-close); a failed write ends it at once.
// Used between clients and a broker (the broker advertises the proxy) and
// between a broker and ZooKeeper.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace runnel::testing {

class fault_proxy {
 public:
  enum class fault { pass, blackhole, drop_responses, refuse };

  // Listens at once on a free 127.0.0.1 port; connections before
  // set_target() (target 0) are held like a blackhole's.
  explicit fault_proxy(std::uint16_t target_port = 0);
  ~fault_proxy();
  fault_proxy(const fault_proxy&) = delete;             // owns a thread and sockets
  fault_proxy& operator=(const fault_proxy&) = delete;  // owns a thread and sockets

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Each change is in force when the call returns.
  // Where connections made from now on go (a restarted broker's new port).
  void set_target(std::uint16_t port);
  void set_fault(fault f);
  void heal() { set_fault(fault::pass); }
  // Each chunk is forwarded `d` after it arrived, both ways (with pass).
  void set_delay(std::chrono::milliseconds d);

  struct counters {
    std::uint64_t connections = 0;     // accepted
    std::uint64_t bytes_up = 0;        // forwarded to the target
    std::uint64_t bytes_down = 0;      // forwarded back
    std::uint64_t dropped_down = 0;    // answered by the target, discarded
    std::uint64_t reset = 0;           // connections reset by `refuse`
  };
  [[nodiscard]] counters stats() const;

 private:
  struct state;
  std::unique_ptr<state> st_;
  std::uint16_t port_ = 0;
};

}  // namespace runnel::testing
