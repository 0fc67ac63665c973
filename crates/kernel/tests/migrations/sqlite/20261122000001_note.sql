create table note (id integer primary key, body text not null unique);
