#pragma once
// topic_watch: this broker's copy of every topic's assignment and partition
// state in ZooKeeper (/topics/<t>, /topics/<t>/partitions/<p>/state),
// kept current by watch subscriptions. `changed` runs on the session's
// executor after changes (bursts coalesce into one call), and only once the
// view is complete: the topic list, every topic and every partition state
// read at least once. A partial view would look like deleted topics.
//
// All on the session's executor; not thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "broker/cluster/topic_state.h"
#include "zk/session.h"

namespace runnel::cluster {

class topic_watch {
 public:
  // The view, and every topic name under /topics, also those whose node
  // did not decode (absent from the view).
  using changed_fn = std::function<void(const topics_view&, const std::set<std::string>&)>;

  topic_watch(zk::session& zk, changed_fn changed);
  ~topic_watch() { *alive_ = false; }
  topic_watch(const topic_watch&) = delete;             // callbacks hold `this`
  topic_watch& operator=(const topic_watch&) = delete;  // callbacks hold `this`
  topic_watch(topic_watch&&) = delete;                  // callbacks hold `this`
  topic_watch& operator=(topic_watch&&) = delete;       // callbacks hold `this`

  // Subscribes to /topics (which must exist).
  void start();
  [[nodiscard]] const topics_view& view() const { return view_; }
  [[nodiscard]] bool complete() const;

 private:
  struct subscriptions {
    std::shared_ptr<zk::subscription> topic;
    std::vector<std::shared_ptr<zk::subscription>> states;
  };
  void on_topic_list(const std::vector<std::string>& names);
  void on_topic(const std::string& name, const std::optional<zk::node>& n);
  void on_state(const std::string& name, std::int32_t partition, const std::optional<zk::node>& n);
  void changed();

  zk::session& zk_;
  changed_fn changed_;
  topics_view view_;
  std::shared_ptr<zk::subscription> list_;
  std::map<std::string, subscriptions> subs_;
  bool list_read_ = false;
  std::set<std::string> listed_;
  std::map<std::string, std::vector<bool>> read_;  // per topic, per partition state: delivered once
  bool notify_pending_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace runnel::cluster
