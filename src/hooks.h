/*
 * hooks.h — installing elfsofa's PostgreSQL hooks (in hooks.c).
 */
#ifndef ES_HOOKS_H
#define ES_HOOKS_H

extern void es_hooks_install(void);

#endif							/* ES_HOOKS_H */
