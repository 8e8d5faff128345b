/* The Lua scripts of the presence registry, compiled in from priv/presence_write.lua and
 * priv/presence_read.lua (c_src/Makefile turns each file into a C string), so what the plugin runs
 * is exactly what it ships and documents. */
#ifndef ERH_SCRIPTS_H
#define ERH_SCRIPTS_H

extern const char erh_script_presence_write[];
extern const char erh_script_presence_read[];

#endif
