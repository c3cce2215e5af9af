#pragma once
// zk::session: one ZooKeeper session over the C client (zookeeper_mt), RAII.
//
// Every operation is an awaitable; the C client's completion (on its own
// thread) is posted back onto the executor given at construction, so
// callers see results on their own thread. Failures are values:
// std::error_code in zk::error_category(). Connection loss is retried by
// the C client within the session timeout; session events (connected,
// expired) reach `on_event` on the executor, so the owner can re-register
// and re-validate every role it held after an expiry.
//
// Watches: get/children with a watch fire once (ZooKeeper's semantics);
// watch_data/watch_children are subscriptions that re-arm after every
// event and deliver the new value each time until the handle goes away.
//
// The destructor closes the session, waiting for the C client's threads.
// Operations still in flight then end without resuming their coroutines
// (destroyed on the executor), including those whose completion the C
// client drops at close; subscriptions deliver nothing more.

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>

#include "zk/errc.h"

namespace runnel::zk {

struct stat {
  std::int32_t version = 0;   // data version, for compare-and-set
  std::int64_t czxid = 0;
  std::int64_t mzxid = 0;
  std::int64_t ephemeral_owner = 0;  // session id of the owner, 0 when persistent
  std::int32_t num_children = 0;
};

struct node {
  std::string data;
  zk::stat stat;
};

enum class create_mode { persistent, ephemeral, persistent_sequential, ephemeral_sequential };
enum class session_state { connecting, connected, expired, auth_failed, closed };

// One operation of an atomic multi().
struct op {
  enum class kind { create, set, remove, check } what;
  std::string path;
  std::string data;           // create, set
  create_mode mode = create_mode::persistent;
  std::int32_t version = -1;  // set, remove, check: -1 = any
};

class subscription;

class session {
 public:
  using event_fn = std::function<void(session_state)>;

  // hosts: "host:port[,host:port...][/chroot]".
  session(asio::any_io_executor ex, const std::string& hosts, std::chrono::milliseconds session_timeout,
          event_fn on_event = {});
  ~session();
  session(const session&) = delete;             // owns a zhandle
  session& operator=(const session&) = delete;  // owns a zhandle
  session(session&&) = delete;                  // the C client holds `this`
  session& operator=(session&&) = delete;       // the C client holds `this`

  // Resumes once connected, or with operation_timeout after `timeout`.
  asio::awaitable<std::error_code> wait_connected(std::chrono::milliseconds timeout);
  [[nodiscard]] session_state state() const;
  [[nodiscard]] asio::any_io_executor executor() const;
  [[nodiscard]] std::int64_t session_id() const;

  // The created path (with the sequence suffix for sequential modes).
  asio::awaitable<std::expected<std::string, std::error_code>> create(const std::string& path, const std::string& data,
                                                                    create_mode mode = create_mode::persistent);
  asio::awaitable<std::expected<node, std::error_code>> get(const std::string& path);
  // version -1: unconditional; otherwise compare-and-set (bad_version on mismatch).
  asio::awaitable<std::expected<stat, std::error_code>> set(const std::string& path, const std::string& data,
                                                            std::int32_t version = -1);
  asio::awaitable<std::error_code> remove(const std::string& path, std::int32_t version = -1);
  asio::awaitable<std::expected<std::vector<std::string>, std::error_code>> children(const std::string& path);
  asio::awaitable<std::expected<std::optional<stat>, std::error_code>> exists(const std::string& path);
  // All or nothing; the error is the first failing op's.
  asio::awaitable<std::error_code> multi(const std::vector<op>& ops);
  // Creates `path` and its missing parents (persistent, empty).
  asio::awaitable<std::error_code> ensure_path(const std::string& path);

  // Subscriptions: `fn` gets the current value now and after every change
  // (nullopt while the node does not exist), on the session's executor,
  // until the returned handle is destroyed.
  std::shared_ptr<subscription> watch_data(const std::string& path, std::function<void(std::optional<node>)> fn);
  std::shared_ptr<subscription> watch_children(const std::string& path,
                                               std::function<void(std::optional<std::vector<std::string>>)> fn);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace runnel::zk
