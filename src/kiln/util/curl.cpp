#include "kiln/util/curl.h"

#include <dlfcn.h>

#include <mutex>

namespace kiln::util {

Result<const Curl*> curl(const std::string& who) {
  static Curl api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = ::dlerror();
      return;
    }
    auto get = [&](const char* name) { return ::dlsym(lib, name); };
    api.easy_init = reinterpret_cast<decltype(api.easy_init)>(get("curl_easy_init"));
    api.easy_setopt = reinterpret_cast<decltype(api.easy_setopt)>(get("curl_easy_setopt"));
    api.easy_perform = reinterpret_cast<decltype(api.easy_perform)>(get("curl_easy_perform"));
    api.easy_getinfo = reinterpret_cast<decltype(api.easy_getinfo)>(get("curl_easy_getinfo"));
    api.easy_cleanup = reinterpret_cast<decltype(api.easy_cleanup)>(get("curl_easy_cleanup"));
    api.easy_strerror = reinterpret_cast<decltype(api.easy_strerror)>(get("curl_easy_strerror"));
    api.slist_append = reinterpret_cast<decltype(api.slist_append)>(get("curl_slist_append"));
    api.slist_free_all = reinterpret_cast<decltype(api.slist_free_all)>(get("curl_slist_free_all"));
    if (!api.easy_init || !api.easy_setopt || !api.easy_perform || !api.easy_getinfo || !api.easy_cleanup ||
        !api.easy_strerror || !api.slist_append || !api.slist_free_all) {
      error = "libcurl.so.4 lacks curl_easy_*";
    }
  });
  if (!error.empty()) {
    return fail(Code::kFailedPrecondition, who + " needs libcurl (" + error + "); install libcurl4 (apt-get install libcurl4)");
  }
  return &api;
}

size_t curl_append(char* data, size_t size, size_t count, void* sink) {
  static_cast<std::string*>(sink)->append(data, size * count);
  return size * count;
}

}  // namespace kiln::util
