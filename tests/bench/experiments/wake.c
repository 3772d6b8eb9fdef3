/* Experiment (docs/architecture.md): wake-up latency of a normal task, 3,000
 * sleeps of 1 ms, printed as the overshoot's p50/p99/p99.9/max. Run beside
 * background work to see whether the scheduler lets the task in at once:
 *   cc -O2 -o /tmp/wake wake.c && setsid /tmp/wake */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static long ns(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000L+t.tv_nsec;}
static int cmp(const void*a,const void*b){long x=*(long*)a,y=*(long*)b;return x<y?-1:x>y;}
int main(void){enum{N=3000};static long d[N];for(int i=0;i<N;i++){struct timespec s={0,1000000};long t=ns();nanosleep(&s,NULL);d[i]=ns()-t-1000000;}
qsort(d,N,sizeof d[0],cmp);printf("wake overshoot us: p50 %ld p99 %ld p99.9 %ld max %ld\n",d[N/2]/1000,d[N*99/100]/1000,d[N*999/1000]/1000,d[N-1]/1000);return 0;}
