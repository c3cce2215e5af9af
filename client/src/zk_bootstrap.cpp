#include "client/src/zk_bootstrap.h"

#define THREADED  // the multi-threaded C client, with its synchronous calls
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace runnel::client {

namespace {

struct connect_state {
  std::mutex mu;
  std::condition_variable cv;
  int state = 0;
};

void on_event(zhandle_t*, int type, int state, const char*, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* s = static_cast<connect_state*>(ctx);
  std::lock_guard l(s->mu);
  s->state = state;
  s->cv.notify_all();
}

struct handle_closer {
  void operator()(zhandle_t* z) const { zookeeper_close(z); }
};

}  // namespace

result<std::vector<host_port>> brokers_from_zookeeper(std::string_view url, std::chrono::milliseconds timeout) {
  auto fail = [&](errc code, const std::string& why) {
    return std::unexpected(error{code, std::string(url) + ": " + why});
  };
  if (!url.starts_with(zk_scheme)) return fail(errc::invalid_argument, "not a zk:// address");
  const std::string connect(url.substr(zk_scheme.size()));
  const std::string hosts = connect.substr(0, connect.find('/'));
  if (hosts.empty() || !parse_bootstrap(hosts)) return fail(errc::invalid_argument, "expected zk://host:port[/chroot]");
  zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
  static FILE* quiet = std::fopen("/dev/null", "w");  // the C client logs to stderr otherwise
  if (quiet != nullptr) zoo_set_log_stream(quiet);
  connect_state st;
  std::unique_ptr<zhandle_t, handle_closer> zh(
      zookeeper_init(connect.c_str(), on_event, static_cast<int>(std::max<std::int64_t>(timeout.count(), 2000)), nullptr,
                     &st, 0));
  if (!zh) return fail(errc::connection_failed, "cannot start a ZooKeeper client");
  {
    std::unique_lock l(st.mu);
    if (!st.cv.wait_for(l, timeout, [&] { return st.state == ZOO_CONNECTED_STATE; })) {
      return fail(errc::connection_failed, "ZooKeeper did not answer within " + std::to_string(timeout.count()) + " ms");
    }
  }
  String_vector ids{};
  int rc = zoo_get_children(zh.get(), "/brokers/ids", 0, &ids);
  if (rc == ZNONODE) return fail(errc::connection_failed, "no brokers registered (no /brokers/ids)");
  if (rc != ZOK) return fail(errc::connection_failed, std::string("reading /brokers/ids: ") + zerror(rc));
  std::vector<std::pair<std::int32_t, host_port>> found;
  for (std::int32_t i = 0; i < ids.count; ++i) {
    const std::string name = ids.data[i];
    std::int32_t id = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec != std::errc{} || p != name.data() + name.size()) continue;
    char buf[512];
    int len = sizeof buf - 1;
    if (zoo_get(zh.get(), ("/brokers/ids/" + name).c_str(), 0, buf, &len, nullptr) != ZOK || len < 0) continue;
    const std::string data(buf, static_cast<std::size_t>(len));
    auto hp = parse_host_port(data.substr(0, data.find(' ')));
    if (hp) found.emplace_back(id, host_port{hp->first, hp->second});
  }
  deallocate_String_vector(&ids);
  if (found.empty()) return fail(errc::connection_failed, "no live brokers in /brokers/ids");
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<host_port> out;
  for (auto& [id, hp] : found) out.push_back(std::move(hp));
  return out;
}

result<std::vector<host_port>> resolve_bootstrap(std::string_view bootstrap, std::chrono::milliseconds timeout) {
  if (bootstrap.starts_with(zk_scheme)) {
    return brokers_from_zookeeper(bootstrap, std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(10)));
  }
  return parse_bootstrap(bootstrap);
}

}  // namespace runnel::client
