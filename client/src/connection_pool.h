#pragma once
// connection_pool: a client's connections, one wire_client per broker
// address (a broker id maps to its advertised address in metadata_cache, so
// the bootstrap connection doubles as that broker's), created on first use
// and kept until the pool goes. Every connection runs on the pool's one I/O
// thread: callbacks of all of them never run concurrently.
// Thread-safe.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// After a standard header: Asio's config tests libstdc++'s macros
// (_GLIBCXX_HAVE_ALIGNED_ALLOC), and every file must see the same answer.
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "client/src/address.h"
#include "client/src/wire_client.h"

namespace runnel::client {

class connection_pool {
 public:
  // `timeout`: every request's (and connect's) timeout.
  connection_pool(std::vector<host_port> bootstrap, std::string client_id,
                  std::chrono::milliseconds timeout);
  // Closes every connection (their requests fail with errc::closed, on the
  // I/O thread) and joins the I/O thread.
  ~connection_pool();
  connection_pool(const connection_pool&) = delete;             // owns a thread
  connection_pool& operator=(const connection_pool&) = delete;  // owns a thread
  connection_pool(connection_pool&&) = delete;                  // the thread holds `this`
  connection_pool& operator=(connection_pool&&) = delete;       // the thread holds `this`

  // A connected broker for what any broker serves (Metadata, admin
  // requests): the last one that answered, else the bootstrap brokers in
  // order, else the brokers metadata named. errc::connection_failed names
  // every address tried when none answers. Blocks; not from the I/O thread.
  result<wire_client*> any();

  // The order any() tries, for callers that fall back asynchronously.
  [[nodiscard]] std::vector<host_port> candidates() const;
  // `address` answered: any() tries it first from now on.
  void answered(const host_port& address);
  // The brokers the latest metadata listed: fallbacks after the bootstrap list.
  void learn(std::vector<host_port> brokers);

  // The connection to `address`, created on first use.
  wire_client& at(const host_port& address);

  // Group coordinators found (group_requests.h): kept until one moves.
  [[nodiscard]] std::optional<host_port> coordinator_of(const std::string& group) const;
  void set_coordinator(const std::string& group, std::optional<host_port> where);

  [[nodiscard]] asio::io_context& io() { return io_; }
  [[nodiscard]] bool on_io_thread() const { return std::this_thread::get_id() == io_thread_id_; }
  [[nodiscard]] std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  const std::vector<host_port> bootstrap_;
  const std::string client_id_;
  const std::chrono::milliseconds timeout_;
  // Declared before the connections: they live on it and go first.
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
  std::thread::id io_thread_id_;

  mutable std::mutex mu_;  // guards what follows
  std::map<host_port, std::unique_ptr<wire_client>> connections_;
  std::vector<host_port> learned_;
  std::optional<host_port> preferred_;
  std::map<std::string, host_port> coordinators_;
  bool closing_ = false;
};

}  // namespace runnel::client
