{
  "targets": [
    {
      "target_name": "gevent",
      "sources": [
        "native/addon.c",
        "native/conn.c",
        "native/dgramconn.c",
        "native/flush.c",
        "native/io.c",
        "native/listen.c",
        "native/loop.c",
        "native/proxyaccept.c",
        "native/proxyproto.c",
        "native/relay.c",
        "native/sys.c",
        "native/tls.c",
        "native/udp.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fvisibility=hidden"],
      "conditions": [
        ["OS!='linux'", { "type": "none", "sources": [] }]
      ]
    }
  ]
}
