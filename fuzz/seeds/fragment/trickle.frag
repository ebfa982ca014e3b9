a=candidate:1 1 udp 2113929471 127.0.0.1 50000 typ host
