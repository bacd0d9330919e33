package cluster

import "strconv"

// Shards is how many shards the shared generation is kept in. Every node
// of a cluster must agree on it (it is not configurable), and every
// Announce advances all of them.
const Shards = 16

// slots is the number of Redis Cluster hash slots.
const slots = 16384

// tags are the hash tags of the shards, one per shard, chosen so that the
// shards' slots are spread evenly over the slot space: shard i's slot lies
// in the i-th of Shards equal ranges. However a Redis Cluster divides its
// slots into ranges between its masters, the shards are then spread evenly
// between them. Every node computes the same tags.
var tags = func() [Shards]string {
	var t [Shards]string
	found := 0
	for c := 0; found < Shards; c++ {
		tag := "g" + strconv.Itoa(c)
		i := int(Slot(tag)) * Shards / slots
		if t[i] == "" {
			t[i] = tag
			found++
		}
	}
	return t
}()

// Tag returns the hash tag of shard i.
func Tag(i int) string { return tags[i] }

// Shard returns the shard of an account: where its rate-limit budgets live,
// beside that shard's copy of the generation.
func Shard(account string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(account); i++ {
		h = (h ^ uint32(account[i])) * 16777619
	}
	return int(h % Shards)
}

// Slot returns the Redis Cluster hash slot of a key (CRC16/XMODEM of its
// hash tag, or of the whole key when it has none, modulo 16384).
func Slot(key string) uint16 {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					break
				}
			}
			break
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % slots
}
