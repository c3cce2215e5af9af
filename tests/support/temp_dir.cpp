#include "tests/support/temp_dir.h"

#include <cstdlib>
#include <string>
#include <system_error>

#include "schemas/assert.h"

namespace runnel::testing {

temp_dir::temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/runnel-test-XXXXXX";
  char* made = ::mkdtemp(templ.data());
  RUNNEL_ASSERT(made != nullptr, "mkdtemp({}) failed", templ);
  path_ = made;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace runnel::testing
