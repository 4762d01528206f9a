// libcurl, loaded on first use (dlopen "libcurl.so.4"), so the kiln binary
// runs on hosts without it; only what talks HTTP to another program (the
// Docker engine, an S3 store) needs it.
#pragma once

#include <curl/curl.h>

#include <string>

#include "kiln/util/error.h"

namespace kiln::util {

// The libcurl functions kiln uses, resolved once.
struct Curl {
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// The loaded library, or kFailedPrecondition naming `who` needs it and how
// to install it.
Result<const Curl*> curl(const std::string& who);

// A CURLOPT_WRITEFUNCTION that appends to the std::string in its user data.
size_t curl_append(char* data, size_t size, size_t count, void* sink);

}  // namespace kiln::util
