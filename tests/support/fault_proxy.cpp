#include "tests/support/fault_proxy.h"

#include "tests/support/raw_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace runnel::testing {

namespace {

using clock = std::chrono::steady_clock;
constexpr std::size_t max_queued = 4U << 20;  // per direction: stop reading beyond this

struct chunk {
  clock::time_point due;
  std::string bytes;
  std::size_t written = 0;
};

// One direction of a connection: bytes read from one side, waiting to be
// written to the other.
struct pipe_queue {
  std::deque<chunk> q;
  std::size_t bytes = 0;
  [[nodiscard]] bool ready(clock::time_point now) const { return !q.empty() && q.front().due <= now; }
};

struct link {
  int client = -1;
  int server = -1;  // -1: not connected yet (held)
  pipe_queue up;    // client -> server
  pipe_queue down;  // server -> client
  bool ended = false;   // a side closed: goes once the queues drain
  bool broken = false;  // lost answer bytes: closed when the fault ends
};

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

void reset_close(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

int connect_local(std::uint16_t port) {
  const int fd = connect_loopback(port);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(fd);
  return fd;
}

}  // namespace

struct fault_proxy::state {
  std::mutex mu;
  std::condition_variable applied;  // a pass started with generation `gen`
  std::uint64_t gen = 0;            // bumped by every change
  std::uint64_t seen = 0;           // the generation the thread's current pass uses
  fault f = fault::pass;
  std::chrono::milliseconds delay{0};
  std::uint16_t target = 0;
  counters c;

  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::atomic<bool> stopping{false};
  std::vector<link> links;  // the proxy thread's own
  std::thread thread;

  void poke() const {
    const char b = 1;
    [[maybe_unused]] auto n = ::write(wake[1], &b, 1);
  }

  static void close_link(link& l) {
    if (l.client >= 0) ::close(l.client);
    if (l.server >= 0) ::close(l.server);
    l.client = l.server = -1;
  }

  // Reads what `from` has into `to` (or counts it in `dropped` and
  // discards it); false at EOF or an error.
  static bool pull(int from, pipe_queue& to, std::chrono::milliseconds d, bool discard, std::uint64_t& dropped) {
    char buf[65536];
    const ssize_t n = ::read(from, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (discard) {
      dropped += static_cast<std::uint64_t>(n);
    } else {
      to.q.push_back(chunk{clock::now() + d, std::string(buf, static_cast<std::size_t>(n)), 0});
      to.bytes += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Writes the queue's due chunks to `to`; false on a write error.
  static bool push(int to, pipe_queue& from, clock::time_point now, std::uint64_t& counted) {
    while (from.ready(now)) {
      chunk& ch = from.q.front();
      const ssize_t n = ::send(to, ch.bytes.data() + ch.written, ch.bytes.size() - ch.written, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      ch.written += static_cast<std::size_t>(n);
      counted += static_cast<std::uint64_t>(n);
      if (ch.written < ch.bytes.size()) return true;
      from.bytes -= ch.bytes.size();
      from.q.pop_front();
    }
    return true;
  }

  void run() {
    while (!stopping.load()) {
      fault now_fault;
      std::chrono::milliseconds d;
      std::uint16_t tgt;
      {
        std::lock_guard g(mu);
        now_fault = f;
        d = delay;
        tgt = target;
        seen = gen;
      }
      applied.notify_all();
      const bool flowing = now_fault == fault::pass || now_fault == fault::drop_responses;
      for (auto& l : links) {
        if (now_fault == fault::refuse) {
          reset_close(l.client);
          reset_close(l.server);
          l.client = l.server = -1;
          std::lock_guard g(mu);
          ++c.reset;
          continue;
        }
        if (l.broken && now_fault != fault::drop_responses) close_link(l);
        if (l.client >= 0 && l.server < 0 && flowing && tgt != 0) {
          l.server = connect_local(tgt);
          if (l.server < 0) close_link(l);  // the target is down: as if it refused
        }
      }
      std::erase_if(links, [](const link& l) { return l.client < 0; });

      std::vector<pollfd> fds;
      fds.push_back({wake[0], POLLIN, 0});
      fds.push_back({listen_fd, POLLIN, 0});
      const auto now = clock::now();
      auto next_due = now + std::chrono::milliseconds(100);
      for (auto& l : links) {
        short ce = 0;
        short se = 0;
        if (flowing && l.server >= 0) {
          if (!l.ended && l.up.bytes < max_queued) ce |= POLLIN;
          if (!l.ended && l.down.bytes < max_queued) se |= POLLIN;
          if (l.down.ready(now)) ce |= POLLOUT;
          if (l.up.ready(now)) se |= POLLOUT;
          // A chunk already due waits for POLLOUT, not for the clock (a
          // peer that cannot take it would spin this loop otherwise).
          for (const pipe_queue* q : {&l.up, &l.down}) {
            if (!q->q.empty() && q->q.front().due > now) next_due = std::min(next_due, q->q.front().due);
          }
        }
        // A negative fd is skipped: with no events poll would still report
        // a hang-up, and a held connection would spin this loop.
        fds.push_back({ce != 0 ? l.client : -1, ce, 0});
        fds.push_back({se != 0 ? l.server : -1, se, 0});
      }
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_due - now).count();
      if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<long>(0, wait))) < 0 && errno != EINTR) break;

      if ((fds[0].revents & POLLIN) != 0) {
        char b[64];
        while (::read(wake[0], b, sizeof b) > 0) {
        }
      }
      if ((fds[1].revents & POLLIN) != 0) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
          std::lock_guard g(mu);
          ++c.connections;
          if (f == fault::refuse) {  // the fault now, not at the top of this pass
            reset_close(fd);
            ++c.reset;
          } else {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            links.push_back(link{fd, -1, {}, {}, false, false});
          }
        }
      }
      std::uint64_t up = 0;
      std::uint64_t down = 0;
      std::uint64_t dropped = 0;
      const std::size_t polled = (fds.size() - 2) / 2;  // links accepted above were not polled
      for (std::size_t i = 0; i < polled; ++i) {
        link& l = links[i];
        const short cr = fds[2 + 2 * i].revents;
        const short sr = fds[3 + 2 * i].revents;
        if ((cr & (POLLIN | POLLHUP | POLLERR)) != 0 && (fds[2 + 2 * i].events & POLLIN) != 0) {
          if (!pull(l.client, l.up, d, false, dropped)) l.ended = true;
        }
        if ((sr & (POLLIN | POLLHUP | POLLERR)) != 0 && (fds[3 + 2 * i].events & POLLIN) != 0) {
          const bool discard = now_fault == fault::drop_responses;
          if (discard) l.broken = true;
          if (!pull(l.server, l.down, d, discard, dropped)) l.ended = true;
        }
        if (l.server >= 0 && flowing) {
          const auto at = clock::now();
          // A failed write: that peer is gone, what is queued for it too.
          if (!push(l.server, l.up, at, up) || !push(l.client, l.down, at, down)) {
            close_link(l);
            continue;
          }
        }
        if (l.ended && l.up.q.empty() && l.down.q.empty()) close_link(l);
      }
      std::lock_guard g(mu);
      c.bytes_up += up;
      c.bytes_down += down;
      c.dropped_down += dropped;
    }
    for (auto& l : links) close_link(l);
  }

  // Applies a change and returns once the thread's passes use it: bytes
  // sent after that are handled under the new fault.
  template <class F>
  void change(F&& how) {
    std::unique_lock g(mu);
    how();
    const std::uint64_t mine = ++gen;
    poke();
    applied.wait(g, [&] { return seen >= mine || stopping.load(); });
  }
};

fault_proxy::fault_proxy(std::uint16_t target_port) : st_(std::make_unique<state>()) {
  st_->target = target_port;
  st_->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(st_->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(st_->listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(st_->listen_fd, 1024) != 0 ||
      ::getsockname(st_->listen_fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 ||
      ::pipe2(st_->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error("fault_proxy: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(a.sin_port);
  st_->thread = std::thread([s = st_.get()] { s->run(); });
}

fault_proxy::~fault_proxy() {
  st_->stopping = true;
  st_->poke();
  st_->thread.join();
  ::close(st_->listen_fd);
  ::close(st_->wake[0]);
  ::close(st_->wake[1]);
}

void fault_proxy::set_target(std::uint16_t port) {
  st_->change([&] { st_->target = port; });
}

void fault_proxy::set_fault(fault f) {
  st_->change([&] { st_->f = f; });
}

void fault_proxy::set_delay(std::chrono::milliseconds d) {
  st_->change([&] { st_->delay = d; });
}

fault_proxy::counters fault_proxy::stats() const {
  std::lock_guard g(st_->mu);
  return st_->c;
}

}  // namespace runnel::testing
