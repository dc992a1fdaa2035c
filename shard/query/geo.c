/* geo.c - haversine distance, point-in-shape tests and the grid cells of the geo index. */
#include "geo.h"

#include <math.h>
#include <string.h>

#include "err.h"

#define DEG (M_PI / 180.0)

double geo_distance(struct geo_point a, struct geo_point b)
{
    double dlat = (b.lat - a.lat) * DEG, dlon = (b.lon - a.lon) * DEG;
    double s = sin(dlat / 2), t = sin(dlon / 2);
    double h = s * s + cos(a.lat * DEG) * cos(b.lat * DEG) * t * t;
    if (h > 1)
        h = 1;
    return 2 * GEO_EARTH_RADIUS * asin(sqrt(h));
}

bool geo_read_point(struct mpk r, struct geo_point *out)
{
    uint32_t n;
    bool has_lon = false, has_lat = false;
    if (mpk_map(&r, &n) != DV_OK)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kn;
        double v;
        if (mpk_str(&r, &k, &kn) != DV_OK) {
            if (mpk_skip(&r) != DV_OK || mpk_skip(&r) != DV_OK)
                return false;
            continue;
        }
        bool lon = kn == 3 && memcmp(k, "lon", 3) == 0, lat = kn == 3 && memcmp(k, "lat", 3) == 0;
        enum mpk_type t = mpk_peek(&r);
        if ((lon || lat) && (t == MPK_UINT || t == MPK_INT || t == MPK_FLOAT)) {
            if (mpk_f64(&r, &v) != DV_OK)
                return false;
            if (lon && !has_lon) {
                out->lon = v;
                has_lon = true;
            } else if (lat && !has_lat) {
                out->lat = v;
                has_lat = true;
            }
        } else if (mpk_skip(&r) != DV_OK) {
            return false;
        }
    }
    return has_lon && has_lat && out->lon >= -180 && out->lon <= 180 && out->lat >= -90 &&
           out->lat <= 90;
}

bool geo_in_ring(const struct geo_point *ring, size_t n, struct geo_point p)
{
    bool in = false;
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
        const struct geo_point *a = &ring[i], *b = &ring[j];
        if ((a->lat > p.lat) != (b->lat > p.lat) &&
            p.lon < (b->lon - a->lon) * (p.lat - a->lat) / (b->lat - a->lat) + a->lon)
            in = !in;
    }
    return in;
}

bool geo_in_box(const struct geo_box *b, struct geo_point p)
{
    if (p.lat < b->lat_min || p.lat > b->lat_max)
        return false;
    if (b->lon_min <= b->lon_max)
        return p.lon >= b->lon_min && p.lon <= b->lon_max;
    return p.lon >= b->lon_min || p.lon <= b->lon_max;
}

struct geo_box geo_radius_box(struct geo_point c, double radius)
{
    /* Angular radius, with a small margin for rounding. */
    double ang = radius / GEO_EARTH_RADIUS * (1 + 1e-9) + 1e-12;
    struct geo_box b = {-90, 90, -180, 180};
    if (ang >= M_PI)
        return b;
    double dlat = ang / DEG;
    b.lat_min = c.lat - dlat;
    b.lat_max = c.lat + dlat;
    if (b.lat_min <= -90 || b.lat_max >= 90) { /* holds a pole: every longitude */
        b.lat_min = b.lat_min < -90 ? -90 : b.lat_min;
        b.lat_max = b.lat_max > 90 ? 90 : b.lat_max;
        return b;
    }
    double s = sin(ang) / cos(c.lat * DEG);
    if (s >= 1)
        return (struct geo_box){b.lat_min, b.lat_max, -180, 180};
    double dlon = asin(s) / DEG;
    if (c.lon - dlon < -180 || c.lon + dlon > 180)
        return (struct geo_box){b.lat_min, b.lat_max, -180, 180};
    b.lon_min = c.lon - dlon;
    b.lon_max = c.lon + dlon;
    return b;
}

static int64_t band(double v, double lo, double span, int level)
{
    int64_t k = (int64_t)1 << level;
    int64_t i = (int64_t)floor((v - lo) / span * (double)k);
    return i < 0 ? 0 : i >= k ? k - 1 : i;
}

static int64_t cell_of(int level, int64_t ilat, int64_t ilon)
{
    return ((int64_t)level << 48) | (ilat << 24) | ilon;
}

int64_t geo_cell(int level, struct geo_point p)
{
    return cell_of(level, band(p.lat, -90, 180, level), band(p.lon, -180, 360, level));
}

void geo_cover(const struct geo_box *b, size_t max_cells, geo_cell_fn fn, void *ctx)
{
    /* A wrapped box is covered as two lon ranges. */
    double lons[2][2] = {{b->lon_min, b->lon_max}, {0, 0}};
    int nr = 1;
    if (b->lon_min > b->lon_max) {
        lons[0][1] = 180;
        lons[1][0] = -180;
        lons[1][1] = b->lon_max;
        nr = 2;
    }
    int level = 0;
    for (int l = GEO_LEVELS - 1; l > 0; l--) {
        size_t cells = 0;
        int64_t nlat = band(b->lat_max, -90, 180, l) - band(b->lat_min, -90, 180, l) + 1;
        for (int r = 0; r < nr; r++)
            cells += (size_t)nlat *
                     (size_t)(band(lons[r][1], -180, 360, l) - band(lons[r][0], -180, 360, l) + 1);
        if (cells <= max_cells) {
            level = l;
            break;
        }
    }
    for (int r = 0; r < nr; r++)
        for (int64_t a = band(b->lat_min, -90, 180, level); a <= band(b->lat_max, -90, 180, level);
             a++)
            for (int64_t o = band(lons[r][0], -180, 360, level);
                 o <= band(lons[r][1], -180, 360, level); o++)
                if (fn(ctx, cell_of(level, a, o)))
                    return;
}
