a=ice-ufrag:abcd
a=ice-pwd:secretsecretsecretsecret
m=audio 9 UDP/TLS/RTP/SAVPF 0
a=mid:0
a=candidate:1 1 udp 2113929471 127.0.0.1 50000 typ host
a=end-of-candidates
