#include "client/src/connection_pool.h"

#include <algorithm>

namespace runnel::client {

connection_pool::connection_pool(std::vector<host_port> bootstrap, std::string client_id,
                                 std::chrono::milliseconds timeout)
    : bootstrap_(std::move(bootstrap)),
      client_id_(std::move(client_id)),
      timeout_(timeout),
      guard_(io_.get_executor()) {
  thread_ = std::thread([this] { io_.run(); });
  io_thread_id_ = thread_.get_id();
}

connection_pool::~connection_pool() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;  // at() from now on hands out closed connections
    for (auto& [address, c] : connections_) c->close();
  }
  guard_.reset();
  thread_.join();  // the connections' coroutines end once closed; their failed requests' callbacks
                   // run first
  connections_.clear();
}

result<wire_client*> connection_pool::any() {
  std::string failures;
  for (const auto& address : candidates()) {
    auto& c = at(address);
    auto r = c.connect();
    if (r) {
      answered(address);
      return &c;
    }
    if (r.error().code == errc::invalid_argument)
      return std::unexpected(r.error());  // called from the I/O thread
    if (!failures.empty()) failures += "; ";
    failures += r.error().message;
  }
  return std::unexpected(error{errc::connection_failed, "no broker answered (" + failures + ")"});
}

std::vector<host_port> connection_pool::candidates() const {
  std::lock_guard lock(mu_);
  std::vector<host_port> out;
  auto add = [&out](const host_port& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  if (preferred_) add(*preferred_);
  for (const auto& a : bootstrap_) add(a);
  for (const auto& a : learned_) add(a);
  return out;
}

void connection_pool::answered(const host_port& address) {
  std::lock_guard lock(mu_);
  preferred_ = address;
}

std::optional<host_port> connection_pool::coordinator_of(const std::string& group) const {
  std::lock_guard lock(mu_);
  auto it = coordinators_.find(group);
  if (it == coordinators_.end()) return std::nullopt;
  return it->second;
}

void connection_pool::set_coordinator(const std::string& group, std::optional<host_port> where) {
  std::lock_guard lock(mu_);
  if (where) {
    coordinators_[group] = *where;
  } else {
    coordinators_.erase(group);
  }
}

void connection_pool::learn(std::vector<host_port> brokers) {
  std::lock_guard lock(mu_);
  learned_ = std::move(brokers);
}

wire_client& connection_pool::at(const host_port& address) {
  std::lock_guard lock(mu_);
  auto& c = connections_[address];
  if (!c) {
    c = std::make_unique<wire_client>(io_, io_thread_id_, address.host, address.port, client_id_,
                                      timeout_);
    if (closing_) c->close();  // created while the pool goes (a callback's retry): fails at once
  }
  return *c;
}

}  // namespace runnel::client
