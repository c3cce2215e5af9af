#include "zk/session.h"

#define THREADED  // the multi-threaded client: its own I/O and completion threads
#include <zookeeper/zookeeper.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <set>

#include <asio/async_result.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

namespace runnel::zk {

namespace {

class category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "runnel.zk"; }
  [[nodiscard]] std::string message(int ev) const override { return zerror(ev); }
};

int mode_flags(create_mode m) {
  switch (m) {
    case create_mode::persistent: return ZOO_PERSISTENT;
    case create_mode::ephemeral: return ZOO_EPHEMERAL;
    case create_mode::persistent_sequential: return ZOO_PERSISTENT_SEQUENTIAL;
    case create_mode::ephemeral_sequential: return ZOO_EPHEMERAL_SEQUENTIAL;
  }
  return ZOO_PERSISTENT;
}

stat to_stat(const Stat* s) {
  stat out;
  if (s != nullptr) {
    out.version = s->version;
    out.czxid = s->czxid;
    out.mzxid = s->mzxid;
    out.ephemeral_owner = s->ephemeralOwner;
    out.num_children = s->numChildren;
  }
  return out;
}

std::vector<std::string> to_strings(const String_vector* v) {
  std::vector<std::string> out;
  if (v != nullptr) {
    for (int i = 0; i < v->count; ++i) out.emplace_back(v->data[i]);
  }
  return out;
}

// The operations of a session whose C completion has not run yet. The
// multi-threaded C client can drop completions of requests still queued
// when the session closes (its completion thread is gone by then); each
// such operation is finished here instead, so no coroutine waits forever
// (and keeps its io_context from ever running out of work).
struct op_base {
  virtual void finish() = 0;

 protected:
  ~op_base() = default;
};
struct pending_ops {
  std::mutex mu;
  std::set<op_base*> ops;
};

// One operation in flight: lives in the awaiting coroutine's frame; the C
// completion fills `result` and posts the resumption to the executor.
template <class R>
struct op_ctx final : op_base {
  R result;
  std::move_only_function<void()> resume;
  asio::any_io_executor ex;
  std::weak_ptr<void> session_alive;
  std::shared_ptr<pending_ops> pending;
  void finish() override {
    if (pending) {
      std::lock_guard lock(pending->mu);
      pending->ops.erase(this);
    }
    asio::post(ex, [this, alive = session_alive] {
      auto r = std::move(resume);
      // The session is gone (its destructor completed this operation with
      // ZCLOSING): the awaiting coroutine is destroyed, never resumed into
      // code that would use the dead session.
      if (alive.expired()) return;
      r();
    });
  }
};

// The result of an operation the C client refused to start (rc != ZOK).
template <class R>
R failure(int rc) {
  if constexpr (std::is_same_v<R, std::error_code>) {
    return make_error_code(rc);
  } else {
    return std::unexpected(make_error_code(rc));
  }
}

// `start` issues the C call with &ctx as its completion data and returns the
// call's own return code; a refused call completes here with that code.
template <class R, class Start>
asio::awaitable<R> run_op(asio::any_io_executor ex, std::weak_ptr<void> alive, std::shared_ptr<pending_ops> pending,
                          Start start) {
  op_ctx<R> ctx;
  ctx.ex = ex;
  ctx.session_alive = std::move(alive);
  ctx.pending = std::move(pending);
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&](auto handler) {
        ctx.resume = [h = std::move(handler)]() mutable { std::move(h)(); };
        {
          std::lock_guard lock(ctx.pending->mu);
          ctx.pending->ops.insert(&ctx);
        }
        if (const int rc = start(ctx); rc != ZOK) {
          ctx.result = failure<R>(rc);
          ctx.finish();
        }
      },
      asio::use_awaitable);
  co_return std::move(ctx.result);
}

}  // namespace

const std::error_category& error_category() noexcept {
  static const category c;
  return c;
}

struct session::impl : std::enable_shared_from_this<session::impl> {
  asio::any_io_executor ex;
  zhandle_t* zh = nullptr;
  std::shared_ptr<int> alive = std::make_shared<int>(0);  // reset when the session closes
  std::shared_ptr<pending_ops> pending = std::make_shared<pending_ops>();
  // Contexts of registered watches (freed when the watch fires, or with the
  // session): the C client keeps a watch across session events and may call
  // it for each, so a watcher context is not freed on those.
  std::mutex watches_mu;
  std::set<void*> watch_contexts;
  event_fn on_event;
  std::atomic<session_state> state{session_state::connecting};

  static void global_watcher(zhandle_t*, int type, int zstate, const char*, void* ctx) {
    if (type != ZOO_SESSION_EVENT) return;
    auto* self = static_cast<impl*>(ctx);
    session_state s = session_state::connecting;
    if (zstate == ZOO_CONNECTED_STATE) s = session_state::connected;
    else if (zstate == ZOO_EXPIRED_SESSION_STATE) s = session_state::expired;
    else if (zstate == ZOO_AUTH_FAILED_STATE) s = session_state::auth_failed;
    self->state = s;
    if (self->on_event) {
      asio::post(self->ex, [w = self->weak_from_this(), s] {
        if (auto me = w.lock(); me && me->on_event) me->on_event(s);
      });
    }
  }
};

session::session(asio::any_io_executor ex, const std::string& hosts, std::chrono::milliseconds session_timeout,
                 event_fn on_event)
    : impl_(std::make_shared<impl>()) {
  impl_->ex = std::move(ex);
  impl_->on_event = std::move(on_event);
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  impl_->zh = zookeeper_init(hosts.c_str(), &impl::global_watcher, static_cast<int>(session_timeout.count()), nullptr,
                             impl_.get(), 0);
  if (impl_->zh == nullptr) throw std::system_error(errno, std::system_category(), "zookeeper_init " + hosts);
}

void free_watch_contexts(session::impl& i);  // below, where watch contexts are defined

session::~session() {
  impl_->state = session_state::closed;
  impl_->alive.reset();  // operations completed by the close below resume nobody
  zookeeper_close(impl_->zh);  // joins the C client's threads: no callback runs after this
  free_watch_contexts(*impl_);
  // Completions the C client dropped: finish them (their coroutines end
  // without resuming, as `alive` is gone).
  std::set<op_base*> lost;
  {
    std::lock_guard lock(impl_->pending->mu);
    lost.swap(impl_->pending->ops);
  }
  for (auto* op : lost) op->finish();
}

session_state session::state() const { return impl_->state.load(); }
asio::any_io_executor session::executor() const { return impl_->ex; }

std::int64_t session::session_id() const {
  const clientid_t* id = zoo_client_id(impl_->zh);
  return id != nullptr ? id->client_id : 0;
}

asio::awaitable<std::error_code> session::wait_connected(std::chrono::milliseconds timeout) {
  asio::steady_timer t(impl_->ex);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->state.load() != session_state::connected) {
    if (impl_->state.load() == session_state::expired) co_return make_error_code(session_expired);
    if (std::chrono::steady_clock::now() >= deadline) co_return make_error_code(operation_timeout);
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  }
  co_return std::error_code{};
}

asio::awaitable<std::expected<std::string, std::error_code>> session::create(const std::string& path,
                                                                            const std::string& data, create_mode mode) {
  using R = std::expected<std::string, std::error_code>;
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_acreate(
        impl_->zh, path.c_str(), data.data(), static_cast<int>(data.size()), &ZOO_OPEN_ACL_UNSAFE, mode_flags(mode),
        [](int rc2, const char* value, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          c->result = rc2 == ZOK ? R(std::string(value)) : R(std::unexpected(make_error_code(rc2)));
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::expected<node, std::error_code>> session::get(const std::string& path) {
  using R = std::expected<node, std::error_code>;
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_aget(
        impl_->zh, path.c_str(), 0,
        [](int rc2, const char* value, int len, const Stat* st, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          if (rc2 == ZOK) {
            c->result = node{value != nullptr && len > 0 ? std::string(value, static_cast<std::size_t>(len)) : std::string(),
                             to_stat(st)};
          } else {
            c->result = std::unexpected(make_error_code(rc2));
          }
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::expected<stat, std::error_code>> session::set(const std::string& path, const std::string& data,
                                                                   std::int32_t version) {
  using R = std::expected<stat, std::error_code>;
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_aset(
        impl_->zh, path.c_str(), data.data(), static_cast<int>(data.size()), version,
        [](int rc2, const Stat* st, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          c->result = rc2 == ZOK ? R(to_stat(st)) : R(std::unexpected(make_error_code(rc2)));
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::error_code> session::remove(const std::string& path, std::int32_t version) {
  using R = std::error_code;
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_adelete(
        impl_->zh, path.c_str(), version,
        [](int rc2, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          c->result = rc2 == ZOK ? std::error_code{} : make_error_code(rc2);
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::expected<std::vector<std::string>, std::error_code>> session::children(const std::string& path) {
  using R = std::expected<std::vector<std::string>, std::error_code>;
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_aget_children2(
        impl_->zh, path.c_str(), 0,
        [](int rc2, const String_vector* v, const Stat*, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          c->result = rc2 == ZOK ? R(to_strings(v)) : R(std::unexpected(make_error_code(rc2)));
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::expected<std::optional<stat>, std::error_code>> session::exists(const std::string& path) {
  using R = std::expected<std::optional<stat>, std::error_code>;
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_aexists(
        impl_->zh, path.c_str(), 0,
        [](int rc2, const Stat* st, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          if (rc2 == ZOK) c->result = std::optional<stat>(to_stat(st));
          else if (rc2 == ZNONODE) c->result = std::optional<stat>();
          else c->result = std::unexpected(make_error_code(rc2));
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::error_code> session::multi(const std::vector<op>& ops) {
  using R = std::error_code;
  std::vector<zoo_op_t> zops(ops.size());
  std::vector<zoo_op_result_t> results(ops.size());
  std::vector<std::vector<char>> path_buffers(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const auto& o = ops[i];
    switch (o.what) {
      case op::kind::create:
        path_buffers[i].resize(o.path.size() + 32);
        zoo_create_op_init(&zops[i], o.path.c_str(), o.data.data(), static_cast<int>(o.data.size()), &ZOO_OPEN_ACL_UNSAFE,
                           mode_flags(o.mode), path_buffers[i].data(), static_cast<int>(path_buffers[i].size()));
        break;
      case op::kind::set:
        zoo_set_op_init(&zops[i], o.path.c_str(), o.data.data(), static_cast<int>(o.data.size()), o.version, nullptr);
        break;
      case op::kind::remove: zoo_delete_op_init(&zops[i], o.path.c_str(), o.version); break;
      case op::kind::check: zoo_check_op_init(&zops[i], o.path.c_str(), o.version); break;
    }
  }
  co_return co_await run_op<R>(impl_->ex, impl_->alive, impl_->pending, [&](op_ctx<R>& ctx) -> int {
    const int rc = zoo_amulti(
        impl_->zh, static_cast<int>(zops.size()), zops.data(), results.data(),
        [](int rc2, const void* d) {
          auto* c = static_cast<op_ctx<R>*>(const_cast<void*>(d));
          c->result = rc2 == ZOK ? std::error_code{} : make_error_code(rc2);
          c->finish();
        },
        &ctx);
    return rc;
  });
}

asio::awaitable<std::error_code> session::ensure_path(const std::string& path) {
  for (std::size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    const std::string prefix = path.substr(0, at);
    auto r = co_await create(prefix, std::string());
    if (!r && r.error() != make_error_code(node_exists)) co_return r.error();
  }
  co_return std::error_code{};
}

// --- subscriptions ----------------------------------------------------------

class subscription : public std::enable_shared_from_this<subscription> {
 public:
  enum class kind { data, children };
  subscription(std::weak_ptr<session::impl> s, std::string path, kind k) : session_(std::move(s)), path_(std::move(path)), kind_(k) {}

  std::function<void(std::optional<node>)> on_data;
  std::function<void(std::optional<std::vector<std::string>>)> on_children;

  // Arms the watch and delivers the current value (on the executor).
  void arm();
  void cancel() { active_ = false; }

 private:
  static void watcher(zhandle_t*, int type, int, const char*, void* ctx);
  void deliver_data(std::optional<node> n);
  void deliver_children(std::optional<std::vector<std::string>> c);

  std::weak_ptr<session::impl> session_;
  std::string path_;
  kind kind_;
  std::atomic<bool> active_{true};
};

namespace {

// What a C callback holds: keeps the subscription alive until it fires.
struct sub_box {
  std::shared_ptr<subscription> sub;
};

// A watch context, registered with its session until the watch fires.
sub_box* new_watch_box(session::impl& owner, std::shared_ptr<subscription> sub) {
  auto* b = new sub_box{std::move(sub)};
  std::lock_guard lock(owner.watches_mu);
  owner.watch_contexts.insert(b);
  return b;
}

}  // namespace

void free_watch_contexts(session::impl& i) {
  std::lock_guard lock(i.watches_mu);
  for (void* b : i.watch_contexts) delete static_cast<sub_box*>(b);
  i.watch_contexts.clear();
}

void subscription::watcher(zhandle_t*, int type, int, const char*, void* ctx) {
  // Session events (disconnect, reconnect, expiry) may reach the same watch
  // more than once: its context stays with the session until a real event.
  if (type == ZOO_SESSION_EVENT) return;
  auto* raw = static_cast<sub_box*>(ctx);
  auto s = raw->sub->session_.lock();
  if (s) {
    std::lock_guard lock(s->watches_mu);
    if (s->watch_contexts.erase(raw) == 0) return;  // freed with the session already
  }
  std::unique_ptr<sub_box> box(raw);
  if (!box->sub->active_ || !s) return;
  asio::post(s->ex, [sub = box->sub] {
    if (sub->active_) sub->arm();
  });
}

void subscription::deliver_data(std::optional<node> n) {
  auto s = session_.lock();
  if (!s) return;
  asio::post(s->ex, [self = shared_from_this(), n = std::move(n)]() mutable {
    if (self->active_ && self->on_data) self->on_data(std::move(n));
  });
}

void subscription::deliver_children(std::optional<std::vector<std::string>> c) {
  auto s = session_.lock();
  if (!s) return;
  asio::post(s->ex, [self = shared_from_this(), c = std::move(c)]() mutable {
    if (self->active_ && self->on_children) self->on_children(std::move(c));
  });
}

// Every C callback holds its own strong reference (a sub_box it deletes):
// the C client may run completions and watchers in any order, also while
// the session closes.
void subscription::arm() {
  auto s = session_.lock();
  if (!s || !active_) return;
  if (kind_ == kind::children) {
    auto* box = new_watch_box(*s, shared_from_this());
    auto* done = new sub_box{shared_from_this()};
    const int rc = zoo_awget_children2(
        s->zh, path_.c_str(), &subscription::watcher, box,
        [](int rc2, const String_vector* v, const Stat*, const void* d) {
          std::unique_ptr<sub_box> mine(static_cast<sub_box*>(const_cast<void*>(d)));
          subscription* self = mine->sub.get();
          if (rc2 == ZOK) {
            self->deliver_children(to_strings(v));
          } else if (rc2 == ZNONODE) {
            // No node, so no child watch was set: watch for its creation.
            if (auto sess = self->session_.lock()) {
              auto* b2 = new_watch_box(*sess, mine->sub);
              if (zoo_awexists(sess->zh, self->path_.c_str(), &subscription::watcher, b2,
                               [](int, const Stat*, const void*) {}, nullptr) != ZOK) {
                std::lock_guard lock(sess->watches_mu);
                sess->watch_contexts.erase(b2);
                delete b2;
              }
            }
            self->deliver_children(std::nullopt);
          }
        },
        done);
    if (rc != ZOK) {
      {
        std::lock_guard lock(s->watches_mu);
        s->watch_contexts.erase(box);
      }
      delete box;
      delete done;
    }
    return;
  }
  // Data: an exists-watch fires on create, change and delete alike.
  auto* box = new_watch_box(*s, shared_from_this());
  auto* done = new sub_box{shared_from_this()};
  const int rc = zoo_awexists(
      s->zh, path_.c_str(), &subscription::watcher, box,
      [](int rc2, const Stat*, const void* d) {
        std::unique_ptr<sub_box> mine(static_cast<sub_box*>(const_cast<void*>(d)));
        subscription* self = mine->sub.get();
        auto sess = self->session_.lock();
        if (!sess) return;
        if (rc2 == ZNONODE) {
          self->deliver_data(std::nullopt);
          return;
        }
        if (rc2 != ZOK) return;
        auto* got = new sub_box{mine->sub};
        const int rc3 = zoo_aget(
            sess->zh, self->path_.c_str(), 0,
            [](int rc4, const char* value, int len, const Stat* st, const void* d2) {
              std::unique_ptr<sub_box> held(static_cast<sub_box*>(const_cast<void*>(d2)));
              if (rc4 == ZOK) {
                held->sub->deliver_data(node{value != nullptr && len > 0 ? std::string(value, static_cast<std::size_t>(len))
                                                                         : std::string(),
                                             to_stat(st)});
              } else if (rc4 == ZNONODE) {
                held->sub->deliver_data(std::nullopt);
              }
            },
            got);
        if (rc3 != ZOK) delete got;
      },
      done);
  if (rc != ZOK) {
    {
      std::lock_guard lock(s->watches_mu);
      s->watch_contexts.erase(box);
    }
    delete box;
    delete done;
  }
}

std::shared_ptr<subscription> session::watch_data(const std::string& path, std::function<void(std::optional<node>)> fn) {
  auto sub = std::make_shared<subscription>(impl_, path, subscription::kind::data);
  sub->on_data = std::move(fn);
  sub->arm();
  return std::shared_ptr<subscription>(sub.get(), [sub](subscription*) { sub->cancel(); });
}

std::shared_ptr<subscription> session::watch_children(const std::string& path,
                                                      std::function<void(std::optional<std::vector<std::string>>)> fn) {
  auto sub = std::make_shared<subscription>(impl_, path, subscription::kind::children);
  sub->on_children = std::move(fn);
  sub->arm();
  return std::shared_ptr<subscription>(sub.get(), [sub](subscription*) { sub->cancel(); });
}

}  // namespace runnel::zk
